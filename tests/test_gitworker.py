"""The reference git worker (`dramatiq gitworker.worker`): one CONTEXT_READY per tool call."""

from __future__ import annotations

import collections
import json

import pytest

from llm_worker.broker.outbound import send_message
from tests.support import wait_for

pytestmark = pytest.mark.cli
SECRET_ARGUMENT = "ARGUMENT-VALUE-" + "z" * 4000

HOSTILE_CALLS = {
    "bad-start": {"tool": "read_file", "arguments": {"path": "app.py", "start_line": "abc"}},
    "bad-end": {"tool": "read_file", "arguments": {"path": "app.py", "end_line": [1]}},
    "bool-line": {"tool": "read_file", "arguments": {"path": "app.py", "start_line": True}},
    "path-int": {"tool": "read_file", "arguments": {"path": 7}},
    "unknown-arg": {"tool": "search_code", "arguments": {"query": "x", "nope": 1}},
    "args-list": {"tool": "read_file", "arguments": ["app.py"]},
    "long-value": {"tool": "find_definition", "arguments": {"symbol": {"x": SECRET_ARGUMENT}}},
    "unknown-tool": {"tool": {"deep": SECRET_ARGUMENT}, "arguments": {}},
    "good": {"tool": "read_file", "arguments": {"path": "app.py", "start_line": 1, "end_line": 2}},
}


def _context_ready(redis_client):
    answers = collections.defaultdict(list)
    for raw in redis_client.hvals("dramatiq:llm.review.msgs"):
        args = json.loads(raw)["args"]
        if args[2] == "CONTEXT_READY":
            answers[args[3]["tool_call_id"]].append(args[3])
    return answers


def test_every_tool_call_gets_exactly_one_context_ready(
    start_worker, git_repo, redis_client, tmp_path
):
    worker = start_worker(
        "--processes", "1", "--threads", "2", module="gitworker.worker", GIT_REPO_PATH=str(git_repo)
    )
    for call_id, call in HOSTILE_CALLS.items():
        send_message("git_queue", "fetch_context", ("rr-9", "1", {"id": call_id, **call}), {})
    send_message("git_queue", "fetch_context", ("rr-9", "1", "not a tool call"), {})

    wait_for(lambda: len(_context_ready(redis_client)) > len(HOSTILE_CALLS), timeout=60)
    wait_for(lambda: redis_client.hlen("dramatiq:git_queue.msgs") == 0, timeout=10)
    answers = _context_ready(redis_client)
    assert worker.poll() is None
    assert {call_id: len(found) for call_id, found in answers.items()} == {
        **{call_id: 1 for call_id in HOSTILE_CALLS},
        "None": 1,
    }
    assert answers["good"][0]["error"] is None
    assert answers["good"][0]["content"].startswith("app.py lines 1-2:")
    errors = {call_id: found[0]["error"] for call_id, found in answers.items()}
    assert errors["bad-start"] == "start_line must be an integer"
    assert errors["bad-end"] == "end_line must be an integer"
    assert errors["bool-line"] == "start_line must be an integer"
    assert errors["args-list"] == "arguments must be an object"
    assert errors["None"] == "tool_call must be an object"
    assert all(errors[c] for c in HOSTILE_CALLS if c != "good")
    assert redis_client.zcard("dramatiq:git_queue.XQ") == 0  # nothing retried into the DLQ
    log = (tmp_path / "worker0.log").read_text()
    assert "ARGUMENT-VALUE" not in log
