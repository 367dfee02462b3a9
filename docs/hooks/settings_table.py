"""MkDocs hook: the settings table, generated from :class:`llm_worker.settings.Settings`.

Each row is one field of the model: its environment variable (the field's name in upper
case), its type with the bounds the model enforces, its default, and its description, the
``#:`` comment lines directly above the field in the source (the convention Sphinx's
autodoc reads). Those comments are the one place a setting is described; this hook only
lays them out, so the manual cannot drift from the model.

The table replaces :data:`PLACEHOLDER` in ``settings.md``; the rest of that page is
hand-written.
"""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `mkdocs build` from a checkout that is not installed
    sys.path.insert(0, str(ROOT))

#: The line of ``settings.md`` the table replaces.
PLACEHOLDER = "<!-- settings-table -->"
#: The page that holds the placeholder.
PAGE = "settings.md"

_BOUNDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "min_length": "length >="}


class SettingRow(NamedTuple):
    """One row of the table: a field of the settings model as the environment sees it."""

    variable: str
    type: str
    default: str
    description: str


def field_comments(cls: type) -> dict[str, str]:
    """The ``#:`` comment of each field declared in ``cls`` and its bases' source, by name.

    A comment is the run of ``#:`` lines directly above a field's annotation; a field
    without one is absent from the result.
    """
    comments: dict[str, str] = {}
    fields = getattr(cls, "model_fields", {})
    for klass in reversed(cls.__mro__):
        if not any(name in vars(klass).get("__annotations__", {}) for name in fields):
            continue
        try:
            lines, _ = inspect.getsourcelines(klass)
        except (OSError, TypeError):
            continue
        source = textwrap.dedent("".join(lines))
        source_lines = source.splitlines()
        body = ast.parse(source).body[0]
        assert isinstance(body, ast.ClassDef)
        for node in body.body:
            if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
                continue
            above: list[str] = []
            index = node.lineno - 2  # the line above the field, 0-based
            while index >= 0 and source_lines[index].strip().startswith("#:"):
                above.insert(0, source_lines[index].strip().removeprefix("#:").strip())
                index -= 1
            if above:
                comments[node.target.id] = " ".join(above)
    return comments


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " | ".join(f"`{value}`" for value in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        shown = [_type_name(arg) for arg in args if arg is not type(None)]
        return " | ".join(shown) + (" (optional)" if type(None) in args else "")
    name = getattr(annotation, "__name__", str(annotation))
    return {"SecretStr": "secret", "Path": "path", "str": "text"}.get(name, name)


def _bounds(metadata: list[Any]) -> str:
    shown = []
    for item in metadata:
        for attribute, symbol in _BOUNDS.items():
            value = getattr(item, attribute, None)
            if value is not None:
                shown.append(f"{symbol} {value}")
    return ", ".join(shown)


def _default(value: Any) -> str:
    if value is None:
        return "unset"
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    if isinstance(value, bool):
        value = "true" if value else "false"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"`{value}`"
    text = str(value)
    return f"`{text}`" if text else "empty"


def _markdown(text: str) -> str:
    """A ``#:`` comment as table-cell Markdown: reST literals become code; outside code,
    pipes are escaped (they would end the cell) and so are ``<`` and ``>`` (HTML)."""
    parts = text.replace("``", "`").split("`")
    for index in range(0, len(parts), 2):
        plain = parts[index].replace("<", "&lt;").replace(">", "&gt;")
        parts[index] = plain.replace("|", "\\|")
    return "`".join(parts)


def variable_of(name: str, field: Any) -> str:
    """The environment variable of a field: its name in upper case, or the pattern its
    ``json_schema_extra`` names as ``variable`` (``LLM_PRIORITY_<ACTOR>``)."""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    return str(extra.get("variable", name.upper()))


def settings_rows() -> list[SettingRow]:
    """A row for every field of :class:`llm_worker.settings.Settings`, in its order."""
    from llm_worker.settings import Settings

    comments = field_comments(Settings)
    rows = []
    for name, field in Settings.model_fields.items():
        kind = _type_name(field.annotation)
        bounds = _bounds(field.metadata)
        rows.append(
            SettingRow(
                variable=variable_of(name, field),
                type=f"{kind} ({bounds})" if bounds else kind,
                default=_default(field.default),
                description=_markdown(comments.get(name, "")),
            )
        )
    return rows


def render_table(rows: list[SettingRow]) -> str:
    """The rows as a Markdown table; a field without a ``#:`` comment shows a dash."""
    lines = ["| variable | type | default | description |", "|---|---|---|---|"]
    for row in rows:
        cells = (f"`{row.variable}`", row.type.replace("|", "\\|"), row.default)
        lines.append(f"| {' | '.join(cells)} | {row.description or '-'} |")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """MkDocs event: put the generated table in place of the placeholder on the settings page."""
    if page.file.src_uri != PAGE:
        return markdown
    if PLACEHOLDER not in markdown:
        from mkdocs.exceptions import PluginError

        raise PluginError(f"{PAGE} has lost its placeholder {PLACEHOLDER}")
    return markdown.replace(PLACEHOLDER, render_table(settings_rows()))
