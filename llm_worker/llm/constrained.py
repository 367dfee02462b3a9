"""Schema-constrained decoding with LLGuidance (llama.cpp's server, the bundled engine).

With ``LLM_RESPONSE_FORMAT=llguidance`` the worker sends each result's JSON
Schema as an LLGuidance grammar (the request's ``grammar`` field), so the
engine can only produce answers that match it: enums, number ranges, required
fields, no extra keys, bounded strings and lists, and compact whitespace (a
small model otherwise emits blank lines until ``max_tokens``).  Every schema
the worker sends is compiled once at start-up: one the engine cannot enforce
stops the process instead of being silently relaxed.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from llm_worker.errors import SettingsError

#: Longest string the engine may produce where the schema sets no bound, in characters.
DEFAULT_MAX_LENGTH = 400
#: Most keys the engine may produce in a free-form object.
DEFAULT_MAX_PROPERTIES = 4
#: How the engine writes JSON: exactly the separators of the prompts' examples (Python's
#: ``json.dumps``), no other whitespace (a small model otherwise writes blank lines until
#: ``max_tokens``).
LAYOUT = {"whitespace_flexible": False, "key_separator": ": ", "item_separator": ", "}
#: Step of bounded numbers (confidences): two decimals, so a number cannot run on.
NUMBER_STEP = 0.01
#: Longest list the engine may produce where the schema sets no bound.
DEFAULT_MAX_ITEMS = 20


def _close_object(node: dict[str, Any]) -> None:
    """No keys beyond the properties; a free-form object (a tool call's arguments) gets a
    few bounded scalar values."""
    if "properties" in node:
        node.setdefault("additionalProperties", False)
    elif node.get("type") == "object" and node.get("additionalProperties", True) is True:
        node["additionalProperties"] = {
            "anyOf": [{"type": "string", "maxLength": DEFAULT_MAX_LENGTH}, {"type": "integer"}]
        }
        node.setdefault("maxProperties", DEFAULT_MAX_PROPERTIES)


def _tighten(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _tighten(item)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    _close_object(node)
    if kind == "string" and not {"enum", "const", "pattern", "format"} & set(node):
        node.setdefault("maxLength", DEFAULT_MAX_LENGTH)
        node.setdefault("minLength", 1)
    if kind == "number" and "minimum" in node and "maximum" in node:
        node.setdefault("multipleOf", NUMBER_STEP)
    if kind == "array":
        node.setdefault("maxItems", DEFAULT_MAX_ITEMS)
    for key, value in node.items():
        if key not in ("enum", "const", "default", "examples"):
            _tighten(value)


def decoding_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` bounded for decoding: objects closed, strings and lists capped, and
    whitespace fixed (LLGuidance's ``x-guidance`` key) to one space after ``:`` and ``,``,
    as the prompts' examples are written: a model that may not write the space it was
    shown picks other tokens (with no space allowed, a 1.5B model answered "no match" and
    "no event" to every note and email)."""
    bounded = copy.deepcopy(schema)
    _tighten(bounded)
    bounded["x-guidance"] = dict(LAYOUT)
    return bounded


def guidance_grammar(schema: dict[str, Any]) -> str:
    """The LLGuidance grammar (llama.cpp's ``grammar`` field) for answers matching ``schema``."""
    return "%llguidance {}\nstart: %json " + json.dumps(
        decoding_schema(schema), separators=(",", ":")
    )


def schema_problems(schema: dict[str, Any]) -> list[str]:
    """What LLGuidance cannot enforce in ``schema`` (empty when all of it is enforced).

    Raises:
      SettingsError: when the ``llguidance`` package is not installed.
    """
    try:
        import llguidance
    except ImportError:
        raise SettingsError(
            "LLM_RESPONSE_FORMAT=llguidance needs the llguidance package to check the "
            "schemas: pip install -e '.[local-llm]'"
        ) from None
    grammar = llguidance.grammar_from("json_schema", json.dumps(decoding_schema(schema)))
    is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar)
    return [str(m) for m in messages] if is_error or messages else []


def check_enforceable(schemas: dict[str, dict[str, Any]]) -> None:
    """Compile every schema the worker sends (``schemas``, by name).

    Raises:
      SettingsError: naming each schema the engine could not enforce in full, and why.
    """
    problems = {
        name: found for name, schema in schemas.items() if (found := schema_problems(schema))
    }
    if problems:
        listed = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in problems.items())
        raise SettingsError(f"LLM_RESPONSE_FORMAT=llguidance cannot enforce {listed}")
