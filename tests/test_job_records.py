"""A job's own Redis round trips, counted by a TCP proxy between the worker and Redis."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from actors import broker, intent_classify
from llm_worker.services import pool_size_for, services
from tests.payloads import GOOD_REMINDER
from tests.support import TEST_REDIS_URL, drain, notifications

#: Keys of the process, not of one job: the breaker watcher, the report outbox and the
#: 429 cooldown (read at most every 0.1 s per process).
BACKGROUND_KEYS = (b"llmw:breaker", b"llmw:outbox", b"llmw:capacity:cooldown")


class RoundTripCounter:
    """A TCP proxy to Redis that records each round trip: the bytes a client sends
    before it reads an answer."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.round_trips: list[bytes] = []
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            state: dict[str, Any] = {"sending": bytearray(), "answered": True, "trip": 0}
            threading.Thread(
                target=self._requests, args=(client, server, state), daemon=True
            ).start()
            threading.Thread(
                target=self._answers, args=(server, client, state), daemon=True
            ).start()

    def _requests(
        self, client: socket.socket, server: socket.socket, state: dict[str, Any]
    ) -> None:
        while chunk := client.recv(65536):
            with self.lock:
                if state["answered"]:
                    state["answered"] = False
                    state["sending"] = bytearray()
                    state["trip"] = len(self.round_trips)  # this connection's own entry
                    self.round_trips.append(b"")
                state["sending"] += chunk
                self.round_trips[state["trip"]] = bytes(state["sending"])
            server.sendall(chunk)
        server.close()

    def _answers(self, server: socket.socket, client: socket.socket, state: dict[str, Any]) -> None:
        while chunk := server.recv(65536):
            with self.lock:
                state["answered"] = True
            client.sendall(chunk)
        client.close()

    def mark(self) -> int:
        """Where the round trips from now on start (for :meth:`job_round_trips`)."""
        with self.lock:
            return len(self.round_trips)

    def job_round_trips(self, since: int = 0) -> list[bytes]:
        """Round trips other than connection set-up (redis-py 8's ``HELLO`` and ``CLIENT``,
        ``SELECT``, and the health check's ``PING`` of a new or long idle connection) and the
        background threads' passes."""
        with self.lock:
            return [
                sent
                for sent in self.round_trips[since:]
                if sent[:32].find(b"SELECT") < 0
                and sent[:32].find(b"HELLO") < 0  # redis-py 8's handshake of a new connection
                and sent[:40].find(b"CLIENT") < 0
                and sent != b"*1\r\n$4\r\nPING\r\n"
                and not any(k in sent for k in BACKGROUND_KEYS)
            ]

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def counted_redis(env) -> Iterator[RoundTripCounter]:
    url = urlsplit(TEST_REDIS_URL)
    counter = RoundTripCounter((url.hostname or "127.0.0.1", url.port or 6379))
    env(REDIS_URL=f"redis://127.0.0.1:{counter.port}{url.path}")
    yield counter
    counter.close()


def test_a_completed_job_makes_five_redis_round_trips(
    counted_redis, fake_llm, fake_core, redis_client, worker
):
    fake_llm.answers["IntentResult"] = GOOD_REMINDER
    intent_classify.send(0, 42, {"text": "x"})  # warm-up: connections, script loads
    drain(worker, "llm.intent")
    since = counted_redis.mark()

    jobs = 20
    for n in range(1, jobs + 1):
        intent_classify.send(n, 42, {"text": "x"})
    drain(worker, "llm.intent")

    assert len(fake_core.job_updates()) == jobs + 1
    assert len(notifications(redis_client)) == jobs + 1
    trips = counted_redis.job_round_trips(since)
    # Finished check; the job's stored result read or its lease taken; the call's usage
    # counted by the hour; the valid result stored and the lease released; notification and
    # finished mark.
    assert len(trips) == 5 * jobs, [t[:80] for t in trips]
    assert sum(b"llmw:usage:" in t for t in trips) == jobs
    assert sum(b"llmw:lease:" in t and b"llmw:result:" in t for t in trips) == 2 * jobs
    assert sum(b"llmw:notified:" in t and b"llmw:finished:" in t for t in trips) == jobs


def test_a_retry_after_core_failed_reuses_the_result_read_at_pick_up(
    counted_redis, fake_llm, fake_core, redis_client, worker
):
    fake_llm.answers["IntentResult"] = GOOD_REMINDER
    fake_core.failures.append(503)
    intent_classify.send(5, 42, {"text": "x"})
    drain(worker, "llm.intent")

    assert [u["status"] for u in fake_core.job_updates(5)] == ["completed", "completed"]
    assert len(fake_llm.chat_requests()) == 1
    assert [n["message_type"] for n in notifications(redis_client)] == ["llm_intent_result"]


def test_worker_pools_are_bounded_for_its_threads(env, worker):
    # The worker fixture runs 4 threads.
    assert services().redis.connection_pool.max_connections == pool_size_for(4)
    consumers = len(broker.get_declared_queues()) + len(broker.get_declared_delay_queues())
    assert broker.client.connection_pool.max_connections == consumers + pool_size_for(4)
