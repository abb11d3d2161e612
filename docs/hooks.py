"""MkDocs hook: publish the project's figure gallery (img/, outside docs_dir) with the site.

The pages link figures as `../img/<task>/<name>.png`, relative to the .md file, so they render on GitHub and in
any editor. `img/` stays at the project root because the pipeline writes it (`run_all.py --publish-figures`,
emotions/pipeline/runner.py -> emotions.core.paths.IMG_DIR), so the figures are neither moved nor duplicated.
For the site, this hook
- on_files: adds every file under <project>/img/ as a virtual doc file `img/...` (copied to <site>/img/...);
- on_page_markdown: rewrites links that resolve into <project>/img/ to the matching docs-relative `img/...` path,
  so MkDocs still validates them: a missing figure stays a warning (an error under --strict).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from mkdocs.structure.files import File, Files

GALLERY = "img"  # folder name, both at the project root and inside the site
# the target of a markdown link or image: ](target) or ](target "title")
_LINK = re.compile(r"(\]\()(<?)([^)\s>]+)")


def _roots(config) -> tuple[Path, Path]:
    project = Path(config.config_file_path).resolve().parent
    return project / GALLERY, Path(config.docs_dir).resolve()


def on_files(files: Files, config) -> Files:
    gallery, _ = _roots(config)
    if not gallery.is_dir():
        return files
    for path in sorted(p for p in gallery.rglob("*") if p.is_file() and not p.name.startswith(".")):
        src_uri = f"{GALLERY}/{path.relative_to(gallery).as_posix()}"
        if files.get_file_from_path(src_uri) is None:  # a real docs/img/ file of the same name wins
            files.append(File.generated(config, src_uri, abs_src_path=str(path)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    src = page.file.abs_src_path
    if not src:
        return markdown
    gallery, docs_dir = _roots(config)
    page_dir = Path(src).resolve().parent

    def fix(m: re.Match) -> str:
        target = m.group(3)
        if "://" in target or target.startswith(("#", "/", "mailto:")):
            return m.group(0)
        path, sep, anchor = target.partition("#")
        resolved = Path(os.path.normpath(page_dir / path))
        if not resolved.is_relative_to(gallery):
            return m.group(0)
        in_docs = docs_dir / GALLERY / resolved.relative_to(gallery)
        rel = Path(os.path.relpath(in_docs, page_dir)).as_posix()
        return f"{m.group(1)}{m.group(2)}{rel}{sep}{anchor}"

    return _LINK.sub(fix, markdown)
