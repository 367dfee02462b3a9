"""The review loop across processes: ``llm-worker review``, and both workers on RabbitMQ."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pika
import pytest

from llm_worker import keys
from llm_worker.testing.fakes import Reply
from tests.payloads import COMMENTS
from tests.support import ROOT, app_diff, git, produce, run_cli, wait_for

pytestmark = pytest.mark.cli
REVIEW_QUEUES = ["llm.review", "git_queue"]


def test_llm_worker_review_prints_the_comments(cli_env, git_repo, fake_llm, redis_client):
    fake_llm.push(
        {
            "action": "tool_call",
            "tool": "find_definition",
            "arguments": {"symbol": "total"},
            "reason": "callers",
        },
        {"action": "comment", "comments": COMMENTS},
    )

    done = run_cli(
        cli_env, "review", "--base", "main", "--repo", str(git_repo), "--timeout", "60", timeout=120
    )

    assert done.returncode == 0, done.stderr
    assert "app.py:5 warning: The file is never closed." in done.stdout
    assert "app.py:12 error: quantity may be missing on old items." in done.stdout
    assert ": 3 comments on 1 files" in done.stdout
    assert len(fake_llm.chat_requests()) == 2


def test_review_without_changes_says_so(cli_env, git_repo):
    subprocess.run(["git", "-C", str(git_repo), "checkout", "--", "app.py"], check=True)

    done = run_cli(cli_env, "review", "--base", "main", "--repo", str(git_repo), timeout=60)

    assert (done.returncode, done.stdout) == (0, "no changes against main\n")


def test_review_of_an_unknown_base_is_one_line(cli_env, git_repo):
    done = run_cli(cli_env, "review", "--base", "nope", "--repo", str(git_repo), timeout=60)

    assert done.returncode == 2
    assert done.stderr.startswith("llm-worker: git diff against 'nope' failed")
    assert len(done.stderr.strip().splitlines()) == 1


def _purge_rabbitmq(url, queues):
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    for queue in queues:
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(queue=name)
    connection.close()


@pytest.fixture
def rabbitmq(rabbitmq_url):
    try:
        _purge_rabbitmq(rabbitmq_url, REVIEW_QUEUES)
    except pika.exceptions.AMQPError as exc:  # pragma: no cover - CI starts RabbitMQ
        pytest.fail(f"RabbitMQ is not answering at {rabbitmq_url}: {exc}")
    yield rabbitmq_url
    _purge_rabbitmq(rabbitmq_url, REVIEW_QUEUES)


def test_review_loop_on_rabbitmq(start_worker, cli_env, git_repo, fake_llm, redis_client, rabbitmq):
    fake_llm.push(
        {
            "action": "tool_call",
            "tool": "read_file",
            "arguments": {"path": "app.py", "start_line": 1, "end_line": 5},
            "reason": "imports",
        },
        {"action": "comment", "comments": COMMENTS[:2]},
    )
    rabbit = {"BROKER_URL": rabbitmq, "GIT_REPO_PATH": str(git_repo)}
    start_worker("--processes", "1", "--threads", "2", "--queues", "llm.review", **rabbit)
    start_worker("--processes", "1", "--threads", "1", module="gitworker.worker", **rabbit)
    payload = {
        "repo": "demo",
        "chunk": {"path": "app.py", "diff": app_diff(git_repo)},
    }
    produce(
        {**cli_env, **rabbit},
        "from actors import review_chunk\n"
        f"review_chunk.send('rr-mq', '1', 'REVIEW_REQUEST', {payload!r})",
    )
    raw = wait_for(
        lambda: redis_client.lrange(keys.review_comments("llmw", "rr-mq"), 0, -1), timeout=60
    )

    [result] = [json.loads(r) for r in raw]
    assert result["comments"] == COMMENTS[:2]
    assert len(fake_llm.chat_requests()) == 2
    conversation = json.loads(redis_client.get(keys.review_conversation("llmw", "rr-mq", "1")))
    assert "1: import os" in conversation[2]["content"]


def _default_env(cli_env):
    """The CLI's environment with the settings the test suite changes back at their defaults
    (metrics on), pointing at the fakes and the test Redis."""
    return {k: v for k, v in cli_env.items() if k != "METRICS_ENABLED"}


def test_review_with_default_settings_reports_every_comment(cli_env, git_repo, fake_llm):
    fake_llm.push({"action": "comment", "comments": COMMENTS})

    done = run_cli(
        _default_env(cli_env), "review", "--base", "main", "--repo", str(git_repo), timeout=120
    )

    assert done.returncode == 0, done.stderr
    assert ": 3 comments on 1 files" in done.stdout
    assert "app.py:17 info: discount shadows the total function." in done.stdout
    assert "AttributeError" not in done.stderr and "Unexpected failure" not in done.stderr


def test_review_timeout_bounds_the_whole_command(cli_env, git_repo, fake_llm, redis_client):
    fake_llm.push(Reply(content={"action": "no_issues", "summary": "late"}, delay=60))
    env = {**_default_env(cli_env), "LLM_TIMEOUT_SECONDS": "120"}
    started = time.monotonic()

    done = run_cli(
        env, "review", "--base", "main", "--repo", str(git_repo), "--timeout", "3", timeout=60
    )

    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert "timed out after 3s with 0 comments on 1 files" in done.stdout
    assert "the LLM is slow or not answering" in done.stdout
    assert elapsed < 30  # the LLM would have answered after 60 s
    [review_id] = re.findall(r"review (local-\w+): timed out", done.stdout)
    assert redis_client.exists(keys.review_cancelled("llmw", review_id))  # leftovers dropped


def test_review_timeout_says_the_breaker_is_open(cli_env, git_repo, fake_llm):
    fake_llm.fallback = lambda request: Reply(status=503, body={"error": {"message": "down"}})

    done = run_cli(
        _default_env(cli_env),
        "review",
        "--base",
        "main",
        "--repo",
        str(git_repo),
        "--timeout",
        "3",
        timeout=60,
    )

    assert done.returncode == 1, done.stderr
    assert "timed out after 3s" in done.stdout
    assert "the LLM is unavailable (breaker open: LLM answered HTTP 503: down)" in done.stdout


#: Strings of the user's code, the model's tool arguments and its comments.
MARKER = "zqxmarker"
VERBOSE_REVIEW = (
    "import logging, sys\n"
    "logging.basicConfig(level=logging.DEBUG)\n"
    "from console.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def test_review_logs_hold_no_user_content(cli_env, git_repo, fake_llm):
    source = (git_repo / "app.py").read_text()
    (git_repo / "app.py").write_text(source + f"\n\nSECRET = '{MARKER}-code'\n")
    comment = {**COMMENTS[2], "line": 20, "body": f"{MARKER}-comment is a constant."}
    fake_llm.push(
        {
            "action": "tool_call",
            "tool": "search_code",
            "arguments": {"query": f"{MARKER}-code"},
            "reason": f"{MARKER}-reason",
        },
        {"action": "comment", "comments": [comment]},
    )

    done = subprocess.run(
        [sys.executable, "-c", VERBOSE_REVIEW, "review", "--base", "main", "--repo", str(git_repo)],
        cwd=ROOT,
        env=_default_env(cli_env),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert f"{MARKER}-comment is a constant." in done.stdout  # the command's output
    assert "Received args='(redacted)'" in done.stderr  # debug lines were logged
    assert MARKER not in done.stderr
    assert len(fake_llm.chat_requests()) == 2
    assert f"{MARKER}-code" in json.dumps(fake_llm.chat_requests()[1]["json"])


def test_git_worker_logs_hold_no_user_content(
    start_worker, cli_env, git_repo, redis_client, tmp_path
):
    (git_repo / "notes.txt").write_text(f"{MARKER}-file\n")
    git(git_repo, "add", "notes.txt")  # the git worker serves only what git tracks
    worker = start_worker(
        "--processes",
        "1",
        "--threads",
        "1",
        "-v",
        module="gitworker.worker",
        GIT_REPO_PATH=str(git_repo),
    )
    tool_call = {"id": "t1", "tool": "read_file", "arguments": {"path": "notes.txt"}}
    comment = {**COMMENTS[0], "body": f"{MARKER}-comment"}
    produce(
        cli_env,
        "from llm_worker.broker.outbound import send_message as send\n"
        f"send('git_queue', 'fetch_context', ('rr-log', '1'), {{'tool_call': {tool_call!r}}})\n"
        f"send('git_queue', 'post_comment', ('rr-log', '1'), {{'comments': [{comment!r}]}})\n",
    )
    wait_for(lambda: redis_client.lrange(keys.review_comments("llmw", "rr-log"), 0, -1), timeout=60)
    [answer] = wait_for(lambda: redis_client.hvals("dramatiq:llm.review.msgs"), timeout=60)
    worker.terminate()
    worker.wait(timeout=30)

    assert f"{MARKER}-file" in json.loads(answer)["args"][3]["content"]
    log = (tmp_path / "worker0.log").read_text()
    assert "review rr-log:1 posted: 1 comments" in log
    assert "Received args='(redacted)'" in log
    assert MARKER not in log


def test_review_ends_with_its_results_whatever_else_waits_in_the_queues(
    cli_env, git_repo, fake_llm, redis_client
):
    import dramatiq

    from actors import broker

    other = dramatiq.Message(
        queue_name="llm.review",
        actor_name="review_chunk",
        args=(
            "another-review",
            "1",
            "REVIEW_REQUEST",
            {"repo": "x", "chunk": {"path": "a", "diff": "@@"}},
        ),
        kwargs={},
        options={},
    )
    broker.enqueue(other, delay=600_000)  # another review's message, due in 10 min
    fake_llm.push({"action": "no_issues", "summary": "fine"})

    done = run_cli(
        _default_env(cli_env), "review", "--base", "main", "--repo", str(git_repo), timeout=120
    )

    assert done.returncode == 0, done.stderr
    assert "[1] no issues: fine" in done.stdout
    assert ": 0 comments on 1 files" in done.stdout


def test_review_workers_log_no_user_content(
    start_worker, cli_env, git_repo, fake_llm, redis_client, tmp_path
):
    source = (git_repo / "app.py").read_text()
    (git_repo / "app.py").write_text(source + f"\n\nSECRET = '{MARKER}-code'\n")
    fake_llm.push(
        "not json",  # an invalid answer: retried with feedback
        {
            "action": "tool_call",
            "tool": "search_code",
            "arguments": {"query": f"{MARKER}-code"},
            "reason": "where it is used",
        },
        {"action": "comment", "comments": [{**COMMENTS[2], "line": 20, "body": f"{MARKER}!"}]},
    )
    repo = {"GIT_REPO_PATH": str(git_repo)}
    workers = [
        start_worker("--processes", "1", "--threads", "2", "-v", "--queues", "llm.review", **repo),
        start_worker("--processes", "1", "--threads", "1", "-v", module="gitworker.worker", **repo),
    ]
    payload = {"repo": "demo", "chunk": {"path": "app.py", "diff": app_diff(git_repo)}}
    produce(
        cli_env,
        "from actors import review_chunk\n"
        f"review_chunk.send('rr-logs', '1', 'REVIEW_REQUEST', {payload!r})",
    )
    [raw] = wait_for(
        lambda: redis_client.lrange(keys.review_comments("llmw", "rr-logs"), 0, -1), timeout=60
    )

    assert json.loads(raw)["comments"][0]["body"] == f"{MARKER}!"
    assert len(fake_llm.chat_requests()) == 3
    for worker in workers:  # stopped, so that every line they logged is in their files
        worker.terminate()
        worker.wait(timeout=30)
    for log in (tmp_path / "worker0.log", tmp_path / "worker1.log"):
        text = log.read_text()
        assert "Received args='(redacted)'" in text
        assert MARKER not in text, log.name


def test_review_the_llm_always_fails_ends_with_that_chunk_failed(cli_env, git_repo, fake_llm):
    def fails_reviews_not_probes(request):
        if request["json"].get("max_tokens") == 1:
            return Reply(content="pong")
        return Reply(status=500, body={"error": {"message": "failed to process the prompt"}})

    fake_llm.fallback = fails_reviews_not_probes
    env = {**_default_env(cli_env), "LLM_PROBE_INTERVAL_SECONDS": "0.3"}

    done = run_cli(
        env, "review", "--base", "main", "--repo", str(git_repo), "--timeout", "60", timeout=120
    )

    assert done.returncode == 1, done.stderr
    assert (
        "[1] review failed: the LLM failed this request 3 times, answering probes in between: "
        "LLM answered HTTP 500: failed to process the prompt" in done.stdout
    )
    assert ": 0 comments on 1 files" in done.stdout
    assert "timed out" not in done.stdout
