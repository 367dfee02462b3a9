"""MkDocs hook: the project's differences from Dramatiq's contract, and the Dramatiq tests
the suite does not run, from :mod:`tests.dramatiq_contract.differences`.

That module is the list the suite's run of Dramatiq's tests checks its outcome against;
this hook only lays it out, so the manual cannot drift from what the suite checks.
:data:`DIFFERENCES_PLACEHOLDER` on the guarantees page becomes the list of differences
(each failing test and why), :data:`NOT_RUN_PLACEHOLDER` on the testing page the modules
and tests set aside (each with why).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

#: The line of the guarantees page the differences replace.
DIFFERENCES_PLACEHOLDER = "<!-- dramatiq-differences -->"
#: The line of the testing page the tests set aside replace.
NOT_RUN_PLACEHOLDER = "<!-- dramatiq-not-run -->"
#: Each page and the placeholder it holds.
PAGES = {"guarantees.md": DIFFERENCES_PLACEHOLDER, "testing.md": NOT_RUN_PLACEHOLDER}


def _differences() -> ModuleType:
    """:mod:`tests.dramatiq_contract.differences` of this checkout (MkDocs restores
    ``sys.path`` after loading its hooks, so the checkout is put on it here)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("tests.dramatiq_contract.differences")


def render_differences() -> str:
    """Each expected failure as a Markdown list item: the test, then the difference."""
    return "\n".join(
        f"- `{name}` fails: {difference.reason}"
        for name, difference in _differences().DIFFERENCES.items()
    )


def render_not_run() -> str:
    """The modules and the tests not run, as Markdown list items, each with why."""
    differences = _differences()
    modules = ", ".join(f"`{name}` ({why})" for name, why in differences.OTHER_FILES.items())
    lines = [f"- Modules: {modules}."]
    lines += [f"- `{name}`: {why}." for name, why in differences.NOT_RUN.items()]
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """MkDocs event: put the generated lists in place of their placeholders."""
    placeholder = PAGES.get(page.file.src_uri)
    if placeholder is None:
        return markdown
    if placeholder not in markdown:
        from mkdocs.exceptions import PluginError

        raise PluginError(f"{page.file.src_uri} has lost its placeholder {placeholder}")
    text = render_differences() if placeholder == DIFFERENCES_PLACEHOLDER else render_not_run()
    return markdown.replace(placeholder, text)
