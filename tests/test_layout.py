"""The package graph runs top-down: console → actors, gitworker → middleware → llm_worker.

Every import is read with :mod:`ast`, function-local ones included, so an import
hidden inside a function cannot turn the graph back into a loop.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Top-level packages each package must never import.
FORBIDDEN = {
    "llm_worker": {"console", "actors", "middleware", "gitworker", "bench"},
    "middleware": {"console", "actors", "gitworker", "bench"},
    "actors": {"console", "bench"},
    "gitworker": {"console", "bench"},
}


def imported_packages(path: Path) -> Iterator[tuple[int, str]]:
    """The top-level package of every absolute import in ``path``, with its line.

    Relative imports stay inside the module's own package and are skipped.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def test_imported_packages_sees_function_local_imports(tmp_path):
    module = tmp_path / "module.py"
    module.write_text(
        "import os\n"
        "from . import sibling\n"
        "def later():\n"
        "    from actors.broker import broker\n"
        "    import console.cli\n"
    )
    assert list(imported_packages(module)) == [(1, "os"), (4, "actors"), (5, "console")]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_above_it(package):
    modules = sorted((ROOT / package).rglob("*.py"))
    assert modules, f"no modules under {package}/"
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in modules
        for line, name in imported_packages(path)
        if name in FORBIDDEN[package]
    ]
    assert wrong == []
