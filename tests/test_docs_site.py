"""The docs site builds under `mkdocs build --strict`, its figures land in it, and every relative link of the
README and docs/*.md points at an existing file (so the pages work on GitHub as well as in the site)."""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MARKDOWN = [ROOT / "README.md", *sorted(DOCS.glob("**/*.md"))]

_FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1", re.S | re.M)  # fenced code blocks
_CODE_SPAN = re.compile(r"(`+).+?\1", re.S)
_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)")  # ](target), ](<target>), ](target "title")


def _relative_links(md: Path) -> list[str]:
    text = _CODE_SPAN.sub("", _FENCE.sub("", md.read_text(encoding="utf-8")))
    return [t for t in _LINK.findall(text)
            if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I) and not t.startswith("#")]


@pytest.mark.parametrize("md", MARKDOWN, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(md):
    missing = [t for t in _relative_links(md)
               if not (md.parent / t.split("#", 1)[0].split("?", 1)[0]).exists()]
    assert not missing, f"{md.relative_to(ROOT)}: links to missing files: {missing}"


def test_link_parser_sees_the_docs():
    # guard against a parser that silently finds nothing
    assert any(t.startswith("docs/") for t in _relative_links(ROOT / "README.md"))
    assert any("img/" in t for t in _relative_links(DOCS / "results.md"))


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.src: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.src += [v for k, v in attrs if k == "src" and v]


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None,
                    reason="mkdocs / mkdocs-material not installed (requirements.txt, 'Docs site')")
def test_mkdocs_build_strict(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(site)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    assert (site / "index.html").is_file()
    assert not (site / "hooks.py").exists()  # the hook is config, not content

    page = site / "results" / "index.html"
    if not page.is_file():  # use_directory_urls: false
        page = site / "results.html"
    parser = _Images()
    parser.feed(page.read_text(encoding="utf-8"))
    local = [s for s in parser.src if not re.match(r"^[a-z]+:|^//", s)]
    assert any("img/" in s for s in local), f"no gallery figures in the results page: {parser.src}"
    missing = [s for s in local if not (page.parent / s.split("#", 1)[0]).resolve().is_file()]
    assert not missing, f"results page images missing from the site: {missing}"
