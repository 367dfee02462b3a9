"""``llm-worker eval`` over real HTTP against a scripted OpenAI-compatible server."""

from __future__ import annotations

import json

import pytest

from console.evaluation.cases import SPLITS, read_cases
from console.evaluation.run import run_eval
from llm_worker.testing.fakes import Reply
from tests.support import run_cli


def _answer(request):
    """Answer like a model that always says "task", comments on line 2, and sometimes
    rambles into prose (an invalid answer)."""
    messages = request["json"]["messages"]
    chunks = [m["content"] for m in messages if '"diff"' in m["content"]]
    if chunks:
        path = json.loads(chunks[-1].split("\n")[1])["path"]  # the last: after the examples
        comment = {"path": path, "line": 2, "severity": "error", "body": "bug"}
        return Reply(content={"action": "comment", "comments": [comment]})
    if "later" in messages[-1]["content"]:
        return Reply(content="I am not sure what you mean.")
    return Reply(content={"intent": "task", "confidence": 0.5})


#: Six intents, one of each label and two tasks; "later" makes the scripted model ramble.
INTENTS = [
    ("remind me at 5 to call later", "reminder"),
    ("buy bread", "task"),
    ("fix the bike light", "task"),
    ("where is the ladder?", "search"),
    ("the ladder is in the shed", "general_note"),
    ("hm", "ambiguous"),
]


def _case_file(tmp_path):
    """The six intents above and the bundled dev split's first three review chunks."""
    lines = [
        json.dumps({"job": "intent_classify", "input": {"text": text}, "expect": {"intent": label}})
        for text, label in INTENTS
    ]
    dev = [json.loads(line) for line in SPLITS["dev"].read_text().splitlines() if line.strip()]
    lines += [json.dumps(case) for case in dev if case["job"] == "review"][:3]
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_eval_scores_validity_accuracy_and_baseline(env, fake_llm, capsys, tmp_path):
    svc = env(LLM_PROMPT_PROFILE="small")
    fake_llm.fallback = _answer
    out = tmp_path / "eval.json"

    status = run_eval(
        svc,
        splits={"mine": read_cases(_case_file(tmp_path))},
        jobs=["intent_classify", "review"],
        limit=6,
        concurrency=2,
        json_path=str(out),
    )

    assert status == 0
    table = capsys.readouterr().out
    assert "| mine | intent_classify | 6 |" in table
    report = {job["job_type"]: job for job in json.loads(out.read_text())["jobs"]}
    intent = report["intent_classify"]
    labels = [o["label"] for o in intent["outcomes"]]
    assert set(labels) == {"reminder", "task", "search", "general_note", "ambiguous"}
    valid = [o for o in intent["outcomes"] if o["valid"]]
    assert intent["valid_share"] == len(valid) / 6 == 5 / 6  # "later" got prose
    assert intent["accuracy"] == sum(o["label"] == "task" for o in valid) / 6
    assert intent["baseline"] == 2 / 6  # the most common label among the six
    assert all(o["prompt_tokens"] > 0 for o in valid)
    review = report["review"]
    assert review["valid_share"] == 1.0, review["outcomes"][0]
    # right exactly where the known bug sits on line 2
    assert [o["right"] for o in review["outcomes"]] == [o["label"] == 2 for o in review["outcomes"]]
    body = fake_llm.chat_requests()[-1]["json"]
    assert body["max_tokens"] <= 1000


def test_eval_stops_when_the_llm_is_down(env, fake_llm, capsys):
    svc = env()
    fake_llm.down()
    try:
        status = run_eval(
            svc,
            splits={"dev": read_cases(SPLITS["dev"])},
            jobs=["followup"],
            limit=1,
            concurrency=1,
            json_path=None,
        )
        assert status == 2
    finally:
        fake_llm.up()
    assert "not answering" in capsys.readouterr().out


def test_eval_refuses_unknown_job_types(cli_env):
    done = run_cli(cli_env, "eval", "--jobs", "intent_classify,weather")
    assert done.returncode == 2
    assert "unknown job types ['weather']" in done.stderr


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "Expecting property name"),
        ('{"job": "weather", "input": {}, "expect": {}}', "unknown job 'weather'"),
        ('{"job": "intent_classify", "input": {"text": "x"}}', 'exactly "job", "input"'),
        (
            '{"job": "intent_classify", "input": {"text": "x"}, "expect": {"intent": "joke"}}',
            "intent 'joke' is not one of",
        ),
        (
            '{"job": "task_match", "input": {"content": "x", "open_tasks": [{"id": 1, '
            '"title": "a"}]}, "expect": {"task_id": 2}}',
            "task_id 2 is not among the open tasks",
        ),
        (
            '{"job": "email_extract", "input": {"subject": "s", "body": "b"}, '
            '"expect": {"events": [{"start": "next week"}]}}',
            "Invalid isoformat",
        ),
        ('{"job": "followup", "input": {"txt": "x"}, "expect": {}}', "txt: Extra inputs"),
    ],
)
def test_eval_refuses_a_bad_case_file_naming_its_line(cli_env, fake_llm, tmp_path, line, reason):
    good = '{"job": "intent_classify", "input": {"text": "buy milk"}, "expect": {"intent": "task"}}'
    path = tmp_path / "mine.jsonl"
    path.write_text(good + "\n\n" + line + "\n")

    done = run_cli(cli_env, "eval", "--cases", str(path))

    assert done.returncode == 2
    assert f"{path}:3: " in done.stderr and reason in done.stderr, done.stderr
    assert not fake_llm.chat_requests()
