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


#: ``llm_worker``'s layers, bottom first: a module imports only from its own layer or
#: below.  ``None`` stands for the top-level modules everything shares (settings, errors,
#: keys, identifiers, identity, text); ``services`` is the context the wiring builds from
#: the settings and hands to jobs and reviews, which name its type only for type checks.
#: ``testing`` stands aside: the runtime never imports it.
LAYERS = (
    None,
    "observability",
    "llm",
    "prompts",
    "broker",
    "core",
    "fleet",
    "jobs",
    "review",
    "services",
)
#: Packages that run in a worker or a producer, which never import ``llm_worker.testing``.
RUNTIME = ("llm_worker", "middleware", "actors", "gitworker")


def module_name(path: Path) -> str:
    """The dotted name of the module at ``path``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every absolute import of ``path`` that runs (function-local ones included, those
    under ``if TYPE_CHECKING:`` left out), as the dotted names it may load: the module
    and, for ``from m import n``, ``m.n``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def product_graph() -> dict[str, set[str]]:
    """Module -> the product modules it imports when it runs."""
    paths = [path for package in PRODUCT for path in sorted((ROOT / package).rglob("*.py"))]
    modules = {module_name(path): path for path in paths}
    return {
        name: {imported for _, imported in runtime_imports(path) if imported in modules} - {name}
        for name, path in modules.items()
    }


def layer_of(module: str) -> str | None:
    """The layer of an ``llm_worker`` module (see :data:`LAYERS`)."""
    parts = module.split(".")
    if len(parts) > 2 or (ROOT / "llm_worker" / parts[-1]).is_dir():
        return parts[1]
    return "services" if parts[-1] == "services" else None


def test_llm_worker_imports_only_its_own_layer_or_below():
    wrong = []
    for module, imported in product_graph().items():
        if not module.startswith("llm_worker.") or layer_of(module) == "testing":
            continue
        rank = LAYERS.index(layer_of(module))
        wrong += [
            f"{module} imports {other}"
            for other in sorted(imported)
            if other.startswith("llm_worker.") and LAYERS.index(layer_of(other)) > rank
        ]
    assert wrong == []


def test_the_runtime_never_imports_the_testing_package():
    wrong = [
        f"{module} imports {other}"
        for module, imported in product_graph().items()
        if module.split(".")[0] in RUNTIME and not module.startswith("llm_worker.testing")
        for other in imported
        if other.startswith("llm_worker.testing")
    ]
    assert wrong == []


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The modules of ``graph`` that import each other, directly or not, in groups
    (Tarjan's strongly connected components of more than one module)."""
    circles: list[list[str]] = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = [stack.pop()]
            while component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return circles


def test_import_circles_finds_a_circle_through_three_modules():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_circles(graph) == [["a", "b", "c"]]


def test_no_import_circle_anywhere_in_the_product():
    assert import_circles(product_graph()) == []
