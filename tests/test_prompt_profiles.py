"""Prompt profiles as data, and the schemas the bundled engine must enforce."""

from __future__ import annotations

import json

import pytest

from actors import (
    JOB_ACTORS,  # noqa: F401 (registers every job type)
    intent_classify,
)
from llm_worker.errors import SettingsError
from llm_worker.jobs.registry import answer_schemas
from llm_worker.llm.constrained import check_enforceable, decoding_schema, guidance_grammar
from llm_worker.prompts.profiles import build_profile, load_profile
from llm_worker.review.schemas import review_schemas
from tests.support import drain


def test_small_profile_sends_examples_budget_and_enforced_grammar(env, worker, fake_llm):
    env(LLM_PROMPT_PROFILE="small", LLM_RESPONSE_FORMAT="llguidance")
    fake_llm.push({"intent": "task", "confidence": 0.8})

    intent_classify.send(1, 42, {"text": "buy milk"})
    drain(worker, "llm.intent")

    [request] = fake_llm.chat_requests()
    body = request["json"]
    assert body["max_tokens"] == build_profile("small").job("intent_classify").max_tokens
    assert "response_format" not in body
    assert body["grammar"].startswith("%llguidance {}\nstart: %json ")
    schema = json.loads(body["grammar"].split("%json ", 1)[1])
    assert schema["additionalProperties"] is False
    assert schema["x-guidance"] == {
        "whitespace_flexible": False,
        "key_separator": ": ",
        "item_separator": ", ",
    }
    assert schema["properties"]["confidence"]["maximum"] == 1.0
    system = body["messages"][0]["content"]
    assert "Examples:" in system and '"intent": "general_note"' in system
    assert body["messages"][-1]["content"].startswith("<data>")


def test_prompts_file_overrides_one_job(env, worker, fake_llm, tmp_path):
    override = tmp_path / "prompts.json"
    override.write_text(
        json.dumps(
            {
                "intent_classify": {
                    "task": "Label the note.",
                    "examples": [{"data": {"text": "x"}, "answer": {"intent": "task"}}],
                    "examples_as": "turns",
                    "max_tokens": 20,
                }
            }
        )
    )
    env(LLM_PROMPTS_FILE=str(override))
    fake_llm.push({"intent": "task", "confidence": 0.8})

    intent_classify.send(2, 42, {"text": "buy milk"})
    drain(worker, "llm.intent")

    body = fake_llm.chat_requests()[0]["json"]
    assert body["max_tokens"] == 20
    assert body["messages"][0]["content"].startswith("Label the note.")
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert body["response_format"]["type"] == "json_schema"  # the default format


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1]", "must hold a JSON object"),
        ("{nope", "LLM_PROMPTS_FILE"),
        ('{"followup": {"tsk": "x"}}', "unknown keys"),
        ('{"followup": {"max_tokens": 0}}', "positive integer"),
        ('{"followup": {"examples": [{"data": 1}]}}', "examples of"),
    ],
)
def test_bad_prompts_file_is_a_settings_error(tmp_path, content, message):
    path = tmp_path / "p.json"
    path.write_text(content)
    with pytest.raises(SettingsError, match=message):
        load_profile("default", str(path))


def test_every_worker_schema_compiles_and_bad_ones_are_refused():
    schemas = {**answer_schemas(), **review_schemas()}
    assert {"IntentResult", "EmailExtractResult", "ReviewAnswer"} <= set(schemas)
    check_enforceable(schemas)
    with pytest.raises(SettingsError, match="uniqueItems"):
        check_enforceable({"Tags": {"type": "array", "uniqueItems": True}})
    with pytest.raises(SettingsError, match="look-around"):
        check_enforceable({"Odd": {"type": "string", "pattern": "(?=x)"}})


def test_decoding_schema_bounds_strings_lists_and_numbers():
    schema = decoding_schema(
        {
            "type": "object",
            "properties": {
                "s": {"type": "string"},
                "l": {"type": "array", "items": {"type": "string", "maxLength": 5}},
                "n": {"type": "number", "minimum": 0, "maximum": 1},
                "args": {"type": "object", "additionalProperties": True},
            },
        }
    )
    props = schema["properties"]
    assert props["s"]["maxLength"] > 0 and props["s"]["minLength"] == 1
    assert props["l"]["maxItems"] > 0 and props["l"]["items"]["maxLength"] == 5
    assert props["n"]["multipleOf"] == 0.01
    assert props["args"]["maxProperties"] > 0  # a free-form object is bounded too
    assert props["args"]["additionalProperties"]["anyOf"][0]["maxLength"] > 0
    assert schema["additionalProperties"] is False
    assert "whitespace_flexible" in guidance_grammar({"type": "object"})


def test_a_bad_prompts_file_stops_the_worker_at_boot(cli_env, tmp_path):
    import subprocess
    import sys

    from tests.support import ROOT

    bad = tmp_path / "prompts.json"
    bad.write_text('{"intent_classify": {"max_tokens": -1}}')

    done = subprocess.run(
        [sys.executable, "-m", "dramatiq", "actors", "--processes", "1", "--threads", "1"],
        cwd=ROOT,
        env={**cli_env, "LLM_RESPONSE_FORMAT": "llguidance", "LLM_PROMPTS_FILE": str(bad)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "max_tokens of 'intent_classify'" in done.stderr


def test_small_profile_shows_twelve_examples_of_each_intent():
    """(Kept out of the evaluation set by ``tests/unit/test_evaluation_cases.py``.)"""
    from llm_worker.prompts.data import PROFILES

    shown = [e["data"]["text"] for e in PROFILES["small"]["intent_classify"]["examples"]]
    assert len(shown) == 60
    assert {e["answer"]["intent"] for e in PROFILES["small"]["intent_classify"]["examples"]} == {
        "reminder",
        "task",
        "search",
        "general_note",
        "ambiguous",
    }


def test_small_review_example_is_apart_from_the_evaluation_set():
    from console.evaluation.cases import SPLITS, read_cases
    from llm_worker.prompts.data import PROFILES
    from llm_worker.review.diff import parse_file_diff

    [example] = PROFILES["small"]["review"]["examples"]
    diff = parse_file_diff(example["data"]["diff"])
    [comment] = example["answer"]["comments"]
    assert comment["path"] == example["data"]["path"]
    assert diff.new_side_code()[comment["line"]].strip() == comment["code"]
    assert comment["line"] > 2  # not the line most evaluation bugs sit on
    chunks = [
        case.payload.chunk  # type: ignore[attr-defined]
        for path in SPLITS.values()
        for case in read_cases(path)
        if case.job_type == "review"
    ]
    evaluated_paths = {chunk.path for chunk in chunks}
    evaluated_lines = {
        code.strip()
        for chunk in chunks
        for code in parse_file_diff(chunk.diff).new_side_code().values()
    }
    assert example["data"]["path"] not in evaluated_paths
    assert not evaluated_lines & {code.strip() for code in diff.new_side_code().values()}
