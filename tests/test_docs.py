"""The manual: its settings table covers the settings model, and README stays a doorway."""

from __future__ import annotations

import importlib.util
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

import pytest
import requests

from console import dev_core
from console.dev_core import DevCoreStore, make_server
from llm_worker.settings import Settings
from tests.support import ROOT

pytestmark = pytest.mark.unit

README = ROOT / "README.md"
README_MAX_LINES = 200


def docs_hook(name: str) -> ModuleType:
    """The MkDocs hook ``docs/hooks/{name}.py``, loaded from its file."""
    path = ROOT / "docs" / "hooks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def settings_hook() -> ModuleType:
    """The MkDocs hook that builds the settings table."""
    return docs_hook("settings_table")


def test_the_settings_table_has_a_row_for_every_field():
    hook = settings_hook()
    table = hook.render_table(hook.settings_rows())

    for name, field in Settings.model_fields.items():
        assert f"| `{hook.variable_of(name, field)}` |" in table, name
    assert "| `LLM_PRIORITY_<ACTOR>` |" in table


def test_every_setting_has_a_description():
    rows = settings_hook().settings_rows()

    assert len(rows) == len(Settings.model_fields)
    assert [row.variable for row in rows if not row.description] == []


def test_the_description_is_the_comment_above_the_field():
    rows = {row.variable: row for row in settings_hook().settings_rows()}

    assert rows["LLM_TIMEOUT_SECONDS"].description == (
        "Bound on one whole LLM call (connect, send, wait, read), in seconds."
    )
    assert rows["LLM_TIMEOUT_SECONDS"].default == "`120`"
    assert rows["LLM_TIMEOUT_SECONDS"].type == "float (> 0)"
    assert rows["LLM_API_KEY"].type == "secret"


def test_the_settings_page_keeps_its_placeholder():
    hook = settings_hook()
    page = (ROOT / "docs" / hook.PAGE).read_text(encoding="utf-8")

    assert page.count(hook.PLACEHOLDER) == 1


def test_the_manual_lists_every_difference_from_dramatiqs_contract_and_test_set_aside():
    from tests.dramatiq_contract.differences import DIFFERENCES, NOT_RUN, OTHER_FILES

    hook = docs_hook("dramatiq_contract")
    differences, not_run = hook.render_differences(), hook.render_not_run()

    assert DIFFERENCES and all(f"`{name}` fails: " in differences for name in DIFFERENCES)
    assert all(f"`{name}`: " in not_run for name in NOT_RUN)
    assert all(f"`{name}` (" in not_run for name in OTHER_FILES)
    for page, placeholder in hook.PAGES.items():
        assert (ROOT / "docs" / page).read_text(encoding="utf-8").count(placeholder) == 1


def test_readme_is_a_doorway():
    lines = README.read_text(encoding="utf-8").splitlines()

    assert len(lines) <= README_MAX_LINES


def relative_links(markdown: str) -> list[str]:
    """Targets of the Markdown links in ``markdown`` that are paths in this repository."""
    targets = re.findall(r"\]\(([^)\s]+)\)", markdown)
    return [
        target.split("#")[0]
        for target in targets
        if not re.match(r"[a-z][a-z0-9+.-]*:", target) and not target.startswith("#")
    ]


def test_relative_links_finds_paths_only():
    markdown = "[a](docs/x.md#part) [b](https://example.org) [c](#here) [d](scripts/run.sh)"

    assert relative_links(markdown) == ["docs/x.md", "scripts/run.sh"]


def test_every_relative_link_in_readme_points_at_a_file():
    links = relative_links(README.read_text(encoding="utf-8"))

    assert links
    missing = [link for link in links if not (ROOT / link).exists()]
    assert missing == []


OPENAPI = ROOT / "docs" / "core-api.openapi.json"


def example(schema: dict[str, Any], document: dict[str, Any]) -> Any:
    """The smallest value that fits ``schema`` (enough of JSON Schema for the contract)."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        return example(document["components"]["schemas"][name], document)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    kind = next(k for k in kind if k != "null") if isinstance(kind, list) else kind
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: example(properties[name], document) for name in schema.get("required", [])}
    if kind == "array":
        return [example(schema["items"], document)] * max(1, schema.get("minItems", 0))
    return {"integer": 1, "number": 1.0, "boolean": True}.get(kind, "a/b c")


@pytest.fixture
def dev_core_url(tmp_path: Path) -> Iterator[str]:
    store = DevCoreStore(tmp_path / "core.sqlite3")
    server = make_server(store, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    store.close()


def test_the_dev_core_serves_the_openapi_document(dev_core_url):
    answer = requests.get(f"{dev_core_url}/openapi.json", timeout=5)

    assert answer.status_code == 200
    assert answer.json() == json.loads(OPENAPI.read_text(encoding="utf-8"))


def test_the_dev_core_answers_every_operation_of_the_contract(dev_core_url):
    document = json.loads(OPENAPI.read_text(encoding="utf-8"))

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            parameters = operation.get("parameters", [])
            parameters = [
                document["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]
                if "$ref" in p
                else p
                for p in parameters
            ]
            url = path
            query = {}
            for parameter in parameters:
                value = example(parameter["schema"], document)
                if parameter["in"] == "path":
                    url = url.replace(f"{{{parameter['name']}}}", quote(str(value), safe=""))
                else:
                    query[parameter["name"]] = value
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            answer = requests.request(
                method,
                dev_core_url + url,
                params=query,
                json=example(body["schema"], document) if body else None,
                timeout=5,
            )
            assert 200 <= answer.status_code < 300, (method, url, answer.text)


def test_the_dev_core_lists_the_operations_of_the_openapi_document():
    document = json.loads(OPENAPI.read_text(encoding="utf-8"))
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }

    listed = set(re.findall(r"^- ``([A-Z]+) (/[^`?]+)", dev_core.__doc__ or "", re.M))
    assert listed == documented


def test_a_comment_becomes_table_cell_markdown():
    hook = settings_hook()

    assert hook._markdown("``a|b`` or <token> | x") == "`a|b` or &lt;token&gt; \\| x"
