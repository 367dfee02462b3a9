"""The review loop across processes: ``llm-worker review``, and both workers on RabbitMQ."""

from __future__ import annotations

import json
import os
import subprocess

import pika
import pytest

from tests.conftest import app_diff, produce, run_cli, wait_for
from tests.test_review import COMMENTS

pytestmark = pytest.mark.cli
AMQP_URL = os.environ.get("LLMW_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
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


def _purge_rabbitmq(queues):
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    for queue in queues:
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(queue=name)
    connection.close()


@pytest.fixture
def rabbitmq():
    try:
        _purge_rabbitmq(REVIEW_QUEUES)
    except pika.exceptions.AMQPError as exc:  # pragma: no cover - CI starts RabbitMQ
        pytest.fail(f"RabbitMQ is not answering at {AMQP_URL}: {exc}")
    yield AMQP_URL
    _purge_rabbitmq(REVIEW_QUEUES)


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
    raw = wait_for(lambda: redis_client.lrange("review:rr-mq:comments", 0, -1), timeout=60)

    [result] = [json.loads(r) for r in raw]
    assert result["comments"] == COMMENTS[:2]
    assert len(fake_llm.chat_requests()) == 2
    conversation = json.loads(redis_client.get("conversation:rr-mq:1"))
    assert "1: import os" in conversation[2]["content"]
