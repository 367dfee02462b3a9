"""The review loop with the reference git worker, against a real git repository."""

from __future__ import annotations

import json

import pytest

from actors import review_chunk
from llm_worker import keys
from llm_worker.llm.tokens import estimate_text_tokens
from llm_worker.testing.fakes import Reply
from tests.payloads import COMMENTS
from tests.support import app_diff, drain, git, send_unchecked

pytestmark = pytest.mark.usefixtures("git_actors")
QUEUES = ("llm.review", "git_queue")
PREFIX = "llmw"


def _request(repo, chunk_id="1", **chunk):
    payload = {
        "repo": "demo",
        "title": "Price with quantity",
        "chunk": {"path": "app.py", "diff": app_diff(repo), "language": "python", **chunk},
    }
    return review_chunk.send("rr-1", chunk_id, "REVIEW_REQUEST", payload)


def _results(redis_client, review_id="rr-1"):
    return [
        json.loads(r) for r in redis_client.lrange(keys.review_comments(PREFIX, review_id), 0, -1)
    ]


def _conversation(redis_client, chunk_id="1"):
    raw = redis_client.get(keys.review_conversation(PREFIX, "rr-1", chunk_id))
    return json.loads(raw) if raw else None


def test_two_tool_calls_then_three_comments(worker, git_repo, fake_llm, redis_client):
    fake_llm.push(
        {
            "action": "tool_call",
            "tool": "read_file",
            "arguments": {"path": "app.py"},
            "reason": "see the whole file",
        },
        {
            "action": "tool_call",
            "tool": "find_definition",
            "arguments": {"symbol": "total"},
            "reason": "who calls total",
        },
        {"action": "comment", "comments": COMMENTS},
    )

    _request(git_repo)
    drain(worker, *QUEUES)
    drain(worker, *QUEUES)

    calls = fake_llm.chat_requests()
    assert len(calls) == 3
    third = [m["content"] for m in calls[2]["json"]["messages"]]
    assert any("Result of tool call" in text and "def discount" in text for text in third)
    assert any("def total(items):" in text for text in third)
    [result] = _results(redis_client)
    assert result["chunk_id"] == "1"
    assert result["comments"] == COMMENTS
    conversation = _conversation(redis_client)
    assert [m["kind"] for m in conversation] == [
        "data",
        "tool_call",
        "tool_result",
        "tool_call",
        "tool_result",
        "answer",
    ]
    assert 0 < redis_client.ttl(keys.review_conversation(PREFIX, "rr-1", "1")) <= 604_800


def test_an_unprefixed_key_of_the_same_name_is_neither_read_nor_deleted(
    worker, git_repo, fake_llm, redis_client
):
    other = json.dumps([{"role": "user", "kind": "data", "content": "another application"}])
    redis_client.set("conversation:rr-1:1", other, ex=600)
    fake_llm.push({"action": "no_issues", "summary": "Looks good."})

    _request(git_repo)
    drain(worker, *QUEUES)

    [call] = fake_llm.chat_requests()
    assert not any("another application" in m["content"] for m in call["json"]["messages"])
    assert [r["summary"] for r in _results(redis_client)] == ["Looks good."]
    assert redis_client.get("conversation:rr-1:1") == other.encode()


def test_ids_holding_the_key_separator_get_a_conversation_each(
    worker, git_repo, fake_llm, redis_client
):
    fake_llm.fallback = lambda request: Reply(content={"action": "no_issues", "summary": "ok"})
    payload = {
        "repo": "demo",
        "chunk": {"path": "app.py", "diff": app_diff(git_repo), "language": "python"},
    }

    review_chunk.send("rr:1", "2", "REVIEW_REQUEST", payload)
    review_chunk.send("rr", "1:2", "REVIEW_REQUEST", payload)
    review_chunk.send("rr%3A1", "2", "REVIEW_REQUEST", payload)
    drain(worker, *QUEUES)

    assert len(fake_llm.chat_requests()) == 3
    assert [r["chunk_id"] for r in _results(redis_client, "rr:1")] == ["2"]
    assert [r["chunk_id"] for r in _results(redis_client, "rr")] == ["1:2"]
    assert [r["chunk_id"] for r in _results(redis_client, "rr%3A1")] == ["2"]


def test_a_producer_chunk_id_with_the_part_mark_is_refused(
    worker, git_repo, fake_llm, redis_client
):
    _request(git_repo, chunk_id="big#1")
    drain(worker, *QUEUES)

    [result] = _results(redis_client)
    assert result["chunk_id"] == "big#1"
    assert "chunk_id" in result["error"] and "'#'" in result["error"]
    assert fake_llm.chat_requests() == []


def test_no_issues_posts_summary(worker, git_repo, fake_llm, redis_client):
    fake_llm.push({"action": "no_issues", "summary": "Looks good."})

    _request(git_repo)
    drain(worker, *QUEUES)

    assert _results(redis_client) == [
        {"chunk_id": "1", "comments": [], "summary": "Looks good.", "error": None}
    ]


def test_comment_outside_the_diff_is_retried_with_feedback(
    worker, git_repo, fake_llm, redis_client
):
    outside = {**COMMENTS[0], "line": 1, "end_line": None}
    fake_llm.push(
        {"action": "comment", "comments": [outside]},
        {"action": "comment", "comments": COMMENTS[:1]},
    )

    _request(git_repo)
    drain(worker, *QUEUES)

    _, second = fake_llm.chat_requests()
    feedback = second["json"]["messages"][-1]["content"]
    assert "outside the diff" in feedback and "new-side lines" in feedback
    assert [r["comments"] for r in _results(redis_client)] == [COMMENTS[:1]]


def test_tool_calls_are_capped(env, worker, git_repo, fake_llm, redis_client):
    env(REVIEW_MAX_TOOL_CALLS=1)
    tool_call = {
        "action": "tool_call",
        "tool": "search_code",
        "arguments": {"query": "price"},
        "reason": "usages",
    }
    fake_llm.push(tool_call, tool_call, {"action": "no_issues", "summary": "fine"})

    _request(git_repo)
    drain(worker, *QUEUES)
    drain(worker, *QUEUES)

    calls = fake_llm.chat_requests()
    assert len(calls) == 3
    second = calls[1]["json"]
    assert "used all 1 tool calls" in second["messages"][-1]["content"]
    schema = json.dumps(second["response_format"]["json_schema"]["schema"])
    assert "tool_call" not in schema
    assert "tool calls are used up" in calls[2]["json"]["messages"][-1]["content"]
    assert [r["summary"] for r in _results(redis_client)] == ["fine"]


def test_duplicate_and_unknown_context_ready_are_ignored(worker, git_repo, fake_llm, redis_client):
    fake_llm.push(
        {
            "action": "tool_call",
            "tool": "read_file",
            "arguments": {"path": "README.md"},
            "reason": "docs",
        },
        {"action": "no_issues", "summary": "fine"},
    )
    _request(git_repo)
    drain(worker, *QUEUES)
    drain(worker, *QUEUES)
    tool_call_id = _conversation(redis_client)[1]["tool_call_id"]
    assert len(fake_llm.chat_requests()) == 2

    again = {"tool_call_id": tool_call_id, "content": "# demo", "error": None}
    review_chunk.send("rr-1", "1", "CONTEXT_READY", again)
    review_chunk.send("rr-1", "1", "CONTEXT_READY", {**again, "tool_call_id": "nope"})
    review_chunk.send("rr-1", "missing", "CONTEXT_READY", again)
    drain(worker, *QUEUES)

    assert len(fake_llm.chat_requests()) == 2
    assert len(_results(redis_client)) == 1
    assert _conversation(redis_client, "missing") is None


def test_path_traversal_in_a_tool_call_is_refused(
    worker, git_repo, fake_llm, redis_client, tmp_path
):
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    fake_llm.push(
        {
            "action": "tool_call",
            "tool": "read_file",
            "arguments": {"path": "../secret.txt"},
            "reason": "x",
        },
        {"action": "no_issues", "summary": "fine"},
    )

    _request(git_repo)
    drain(worker, *QUEUES)
    drain(worker, *QUEUES)

    tool_result = _conversation(redis_client)[2]["content"]
    assert "TOP SECRET" not in tool_result
    assert "outside the repository" in tool_result


def _sent_tokens(request):
    return sum(estimate_text_tokens(m["content"]) + 4 for m in request["json"]["messages"])


def test_overflowing_conversation_is_shortened_to_the_budget(
    env, worker, git_repo, fake_llm, redis_client
):
    env(LLM_CONTEXT_TOKENS=3000, LLM_MAX_OUTPUT_TOKENS=200, LLM_TOKENIZER="estimate")
    (git_repo / "big.py").write_text("\n".join(f"VALUE_{n} = {n} * 12345" for n in range(800)))
    git(git_repo, "add", "big.py")  # the git worker serves only what git tracks
    read_big = {
        "action": "tool_call",
        "tool": "read_file",
        "arguments": {"path": "big.py"},
        "reason": "context",
    }
    fake_llm.push(read_big, read_big, read_big, {"action": "no_issues", "summary": "fine"})

    _request(git_repo)
    for _ in range(4):
        drain(worker, *QUEUES)

    calls = fake_llm.chat_requests()
    assert len(calls) == 4
    assert all(_sent_tokens(call) <= 2800 for call in calls), [_sent_tokens(c) for c in calls]
    last = " ".join(m["content"] for m in calls[-1]["json"]["messages"])
    assert "shortened to fit the context window" in last or "dropped to fit" in last
    assert [r["summary"] for r in _results(redis_client)] == ["fine"]


def _many_changes_diff(git_repo):
    """The diff of many.py, committed with 120 small functions, a third of them changed:
    too large for one prompt of a 4,000-token context."""
    lines = [f"def f{n}(x):\n    return x + {n}\n" for n in range(120)]
    (git_repo / "many.py").write_text("".join(lines))
    git(git_repo, "add", "many.py")
    git(git_repo, "commit", "-q", "-m", "many")
    changed = [line.replace("x + ", "x - ") if n % 3 == 0 else line for n, line in enumerate(lines)]
    (git_repo / "many.py").write_text("".join(changed))
    diff = git(git_repo, "diff", "--no-color", "HEAD", "--", "many.py")
    return diff[diff.index("--- a/") :]


def test_diff_larger_than_the_budget_is_split_into_sub_chunks(
    env, worker, git_repo, fake_llm, redis_client
):
    env(LLM_CONTEXT_TOKENS=4000, LLM_MAX_OUTPUT_TOKENS=200, LLM_TOKENIZER="estimate")
    diff = _many_changes_diff(git_repo)
    fake_llm.fallback = lambda request: Reply(content={"action": "no_issues", "summary": "ok"})

    review_chunk.send(
        "rr-1",
        "big",
        "REVIEW_REQUEST",
        {"repo": "demo", "chunk": {"path": "many.py", "diff": diff}},
    )
    drain(worker, *QUEUES)
    drain(worker, *QUEUES)

    results = _results(redis_client)
    assert len(results) >= 2
    assert sorted(r["chunk_id"] for r in results) == [
        f"big#{n}" for n in range(1, len(results) + 1)
    ]
    calls = fake_llm.chat_requests()
    assert len(calls) == len(results)
    assert all(_sent_tokens(call) <= 3800 for call in calls)
    sent_diffs = "".join(
        json.loads(c["json"]["messages"][1]["content"].split("\n", 1)[1].rsplit("\n", 1)[0])["diff"]
        for c in calls
    )
    assert sent_diffs.count("-    return x + ") == diff.count("\n-    return x + ")


def test_a_sub_chunk_retried_after_an_invalid_answer_is_not_refused_as_too_large(
    env, worker, git_repo, fake_llm, redis_client
):
    env(LLM_CONTEXT_TOKENS=4000, LLM_MAX_OUTPUT_TOKENS=200, LLM_TOKENIZER="estimate")
    diff = _many_changes_diff(git_repo)
    garbage = "I think this looks fine overall. " * 40  # not JSON: retried with feedback

    def answer(request):
        retried = any(m["content"] == garbage for m in request["json"]["messages"])
        return Reply(content={"action": "no_issues", "summary": "ok"} if retried else garbage)

    fake_llm.fallback = answer

    review_chunk.send(
        "rr-1",
        "big",
        "REVIEW_REQUEST",
        {"repo": "demo", "chunk": {"path": "many.py", "diff": diff}},
    )
    for _ in range(3):
        drain(worker, *QUEUES)

    results = _results(redis_client)
    assert len(results) >= 2
    assert [r["error"] for r in results] == [None] * len(results)
    assert [r["summary"] for r in results] == ["ok"] * len(results)
    assert len(fake_llm.chat_requests()) == 2 * len(results)


@pytest.mark.parametrize(
    ("event", "payload", "field"),
    [
        ("REVIEW_REQUEST", {"repo": "demo", "chunk": {"path": "a.py"}}, "payload.chunk.diff"),
        (
            "REVIEW_REQUEST",
            {"repo": "demo", "chunk": {"path": "a.py", "diff": "no hunks"}},
            "payload.chunk.diff",
        ),
        ("CONTEXT_READY", {"content": "x"}, "payload.tool_call_id"),
        ("PING", {}, "event"),
    ],
)
def test_invalid_review_messages_are_reported_to_the_git_worker(
    worker, git_repo, fake_llm, redis_client, event, payload, field
):
    send_unchecked(review_chunk, "rr-1", "9", event, payload)
    drain(worker, *QUEUES)

    [result] = _results(redis_client)
    assert result["chunk_id"] == "9"
    assert field in result["error"]
    assert fake_llm.chat_requests() == []


def test_a_cancelled_review_drops_its_queued_messages(worker, git_repo, fake_llm, redis_client):
    redis_client.set(keys.review_cancelled(PREFIX, "rr-1"), "1")

    _request(git_repo)
    drain(worker, *QUEUES)

    assert fake_llm.chat_requests() == []
    assert _conversation(redis_client) is None
    assert _results(redis_client) == []


def test_small_profile_shows_numbered_lines_and_anchors_a_comment_by_its_code(
    env, worker, git_repo, fake_llm, redis_client
):
    from llm_worker.review.diff import parse_file_diff

    env(LLM_PROMPT_PROFILE="small", LLM_RESPONSE_FORMAT="llguidance")
    diff = parse_file_diff(app_diff(git_repo))
    added = diff.added_code()
    context = sorted(set(diff.new_side_code()) - set(added))
    target = max(added)
    comment = {
        "path": "app.py",
        "code": added[target].strip(),
        "line": context[0],  # a wrong number: the quoted code decides
        "severity": "error",
        "body": "bug",
    }
    fake_llm.push({"action": "comment", "comments": [comment]})

    _request(git_repo)
    drain(worker, *QUEUES)

    [call] = fake_llm.chat_requests()
    body = call["json"]
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]  # the one-shot example first
    shown = json.loads(body["messages"][-1]["content"].split("\n", 1)[1].rsplit("\n", 1)[0])
    assert f"{target} +{added[target]}" in [line.lstrip() for line in shown["diff"].splitlines()]
    schema = json.loads(body["grammar"].split("%json ", 1)[1])
    assert "tool_call" not in json.dumps(schema)  # the small profile answers at once
    quoted = schema["$defs"]["ReviewComment"]["properties"]["code"]["enum"]
    assert sorted(quoted) == sorted({code.strip() for code in added.values() if code.strip()})
    text = "\n".join(m["content"] for m in body["messages"])
    assert (
        '"enum"' not in text and '"const"' not in text
    )  # the narrowed schema is not in the prompt
    assert text.count(added[target].strip()) == 1  # the chunk's code is shown once
    [result] = _results(redis_client)
    [posted] = result["comments"]
    assert posted["line"] == target and "code" not in posted
