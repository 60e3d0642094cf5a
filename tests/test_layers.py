"""The import rules of docs/architecture.md, enforced: import-linter's contracts (pyproject.toml), the picture of
the layers kept current, settings read from the environment only where a Runtime is built, and no import
hidden inside a function in the layers that must not have cycles."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "gpulease"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (it comes with the dev extra: pip install -e '.[dev]')")
    return found


def test_import_contracts_are_kept() -> None:
    r = subprocess.run(
        [_tool("lint-imports"), "--no-cache", "--no-logo"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert r.returncode == 0, r.stdout + r.stderr


def current_picture() -> str:
    """The dependencies between gpulease's top-level parts, as import-linter draws them (DOT)."""
    r = subprocess.run(
        [_tool("import-linter"), "drawgraph", "gpulease"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return r.stdout


def test_the_picture_in_the_docs_is_drawn_from_the_code() -> None:
    committed = (ROOT / "docs" / "architecture.dot").read_text()
    assert committed == current_picture(), (
        "the dependencies between the layers changed: if that is intended, redraw the picture with\n"
        "  import-linter drawgraph gpulease > docs/architecture.dot && dot -Tsvg docs/architecture.dot "
        "-o docs/architecture.svg\nand say why in docs/architecture.md"
    )


def _names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names
    }


ENTRY_POINTS = {SRC / "cli.py", SRC / "api" / "app.py", SRC / "settings.py"}


def test_only_the_entry_points_read_the_process_wide_settings() -> None:
    """Everything else gets the Runtime's settings, so two runtimes in one process never mix them up."""
    readers = sorted(
        str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if p not in ENTRY_POINTS and "get_settings" in _names(p)
    )
    assert readers == []


@pytest.mark.parametrize("layer", ["services", "web", "api", "domain", "store"])
def test_no_import_inside_a_function(layer: str) -> None:
    """An import inside a function is how an import cycle hides from the contracts: none in these layers."""
    hidden = []
    for path in (SRC / layer).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                hidden += [
                    f"{path.relative_to(SRC)}:{n.lineno}"
                    for n in ast.walk(fn)
                    if isinstance(n, ast.Import | ast.ImportFrom)
                ]
    assert hidden == []


if __name__ == "__main__":  # python -m tests.test_layers: print the picture (DOT)
    print(current_picture(), end="")
