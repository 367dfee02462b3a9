"""The package graph runs top-down: console → actors, gitworker → middleware → llm_worker.

Every import is read with :mod:`ast`, function-local ones included, so an import
hidden inside a function cannot turn the graph back into a loop.
"""

from __future__ import annotations

import ast
import re
import sys
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


#: Product packages: what a job type's name may not leak into.
PRODUCT = ("llm_worker", "middleware", "actors", "console", "gitworker")
#: Where a job type's name may appear besides its actor module: the package's list of
#: actors producers import from, the prompt data, and the evaluation's labelled cases.
NAMES_ALLOWED_IN = {
    Path("actors/__init__.py"),
    Path("llm_worker/prompts/data.py"),
    Path("console/evaluation/cases.py"),
}


def test_a_job_type_is_named_only_where_it_is_declared():
    import actors  # registers every job type
    from llm_worker.jobs.registry import job_types

    declared_in = {
        name: Path(sys.modules[actor.fn.__module__].__file__ or "").resolve().relative_to(ROOT)
        for name, actor in actors.JOB_ACTORS.items()
    }
    assert set(declared_in) <= set(job_types())
    wrong = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if relative in NAMES_ALLOWED_IN:
                continue
            text = path.read_text(encoding="utf-8")
            wrong += [
                f"{relative} names {name}"
                for name, home in declared_in.items()
                if relative != home and re.search(rf"\b{name}\b", text)
            ]
    assert wrong == []
