"""One body cap per counterpart: an answer larger than it is a clear error, never memory.

The LLM's (``LLM_MAX_RESPONSE_BYTES``) counts as an invalid answer: retried with
feedback, never tripping the breaker.  Core's (``CORE_MAX_RESPONSE_BYTES``) counts as a
Core failure.  The transport refuses a declared ``Content-Length`` over the cap before
reading, and stops a body without one as soon as it grows past it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from actors import intent_classify, task_match
from llm_worker.core.client import CoreClient
from llm_worker.errors import CoreAPIError
from llm_worker.llm.deadline_http import BodyTooLarge, deadline_client
from llm_worker.testing.fakes import Reply
from tests.payloads import GOOD_REMINDER
from tests.support import drain


def test_an_llm_answer_over_its_cap_is_an_invalid_answer_not_an_outage(
    env, worker, fake_llm, fake_core, redis_client
):
    env(LLM_MAX_RESPONSE_BYTES=4096)
    fake_llm.push(Reply(content="x" * 20_000), GOOD_REMINDER)

    intent_classify.send(1, 42, {"text": "remind me"})
    drain(worker, "llm.intent")

    assert [u["status"] for u in fake_core.job_updates(1)] == ["completed"]
    assert len(fake_llm.chat_requests()) == 2  # the second ask carried the feedback
    assert "over 4096" in str(fake_llm.chat_requests()[1]["json"]["messages"])
    assert not redis_client.exists("llmw:breaker")


def test_a_core_answer_over_its_cap_is_a_core_failure(env, fake_core):
    svc = env(CORE_MAX_RESPONSE_BYTES=4096)
    fake_core.tasks[42] = [{"id": n, "title": "t" * 100} for n in range(200)]  # about 24 kB

    with pytest.raises(CoreAPIError, match="over 4096"):
        CoreClient(svc.settings).open_tasks(42)


def test_a_job_whose_core_answer_is_too_large_fails_with_that_reason(
    env, worker, fake_llm, fake_core
):
    env(CORE_MAX_RESPONSE_BYTES=4096, JOB_MAX_RETRIES=0)
    fake_core.tasks[42] = [{"id": n, "title": "t" * 100} for n in range(200)]

    task_match.send(2, 42, {"content": "a note"})
    drain(worker, "llm.task_match")

    [update] = fake_core.job_updates(2)
    assert update["status"] == "failed" and "over 4096" in update["error"]
    assert fake_llm.chat_requests() == []


@pytest.fixture
def endless_server() -> Iterator[str]:
    """A server answering every request with a chunked body that never ends (1 MB chunks
    until the client hangs up)."""
    listener = socket.create_server(("127.0.0.1", 0))
    sent: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                chunk = b"%x\r\n%s\r\n" % (1 << 20, b"y" * (1 << 20))
                try:
                    for _ in range(1000):
                        conn.sendall(chunk)
                        sent.append(1)
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    assert len(sent) < 100  # the client stopped reading long before the end


def test_a_body_without_a_length_is_stopped_once_past_the_cap(endless_server):
    client = deadline_client(10, endless_server, max_body_bytes=64 * 1024)
    with pytest.raises(BodyTooLarge, match="over 65536"):
        client.get(endless_server + "/")
    client.close()
