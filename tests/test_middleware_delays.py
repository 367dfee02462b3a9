"""The delays the service's middleware ask the broker for, on Dramatiq's StubBroker.

The real ``intent_classify`` actor runs under the service's middleware stack
(:func:`actors.broker.service_middleware`) on a ``StubBroker`` with an in-process worker,
against the fake LLM and Core and the test Redis: no worker process, no Redis broker.
A recording middleware at the end of the stack sees every delayed enqueue, so the tests
assert the delay each middleware asked for instead of timing the redelivery.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import dramatiq
import pytest
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware

from actors import intent_classify
from actors.broker import service_middleware
from llm_worker.fleet.capacity import CapacityLimits, CapacityStore
from llm_worker.services import Services
from llm_worker.settings import broker_settings
from llm_worker.testing.fakes import Reply
from middleware import breaker_status
from tests.payloads import GOOD_TASK
from tests.support import wait_for


@dataclass(frozen=True)
class Delayed:
    """One delayed enqueue: which message, after how many milliseconds, with which options."""

    message_id: str
    delay_ms: int
    options: dict[str, Any]


class DelayRecorder(Middleware):
    """Records every enqueue that asks for a delay (the last middleware of the stack)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.delayed: list[Delayed] = []

    def before_enqueue(self, broker: dramatiq.Broker, message: Any, delay: int | None) -> None:
        if delay:
            with self.lock:
                self.delayed.append(Delayed(message.message_id, delay, dict(message.options)))

    def delays(self) -> list[int]:
        """The delays asked for so far, in milliseconds, in order."""
        with self.lock:
            return [entry.delay_ms for entry in self.delayed]


@dataclass
class Stub:
    """The stub broker, its recorder, the actor declared on it and the settings' setter."""

    broker: StubBroker
    recorder: DelayRecorder
    actor: dramatiq.Actor[Any, None]
    configure: Callable[..., Services]


@pytest.fixture
def stub(env, tmp_path) -> Iterator[Stub]:
    """``intent_classify`` on a StubBroker with the service's middleware and a recorder,
    an in-process worker running it; ``stub.configure(NAME=value)`` sets settings."""
    env(LIVENESS_DIR=tmp_path / "alive")
    recorder = DelayRecorder()
    broker = StubBroker(middleware=[*service_middleware(broker_settings()), recorder])
    actor = dramatiq.actor(
        intent_classify.fn,
        broker=broker,
        actor_name=intent_classify.actor_name,
        queue_name=intent_classify.queue_name,
        priority=intent_classify.priority,
        **intent_classify.options,
    )
    worker = Worker(broker, worker_threads=2, worker_timeout=10)
    worker.start()
    yield Stub(broker, recorder, actor, env)
    worker.stop()
    broker.close()


def test_invalid_answers_are_retried_after_doubling_delays_then_fail(stub, fake_llm, fake_core):
    stub.configure(LLM_RETRY_BACKOFF_SECONDS=0.02, LLM_MAX_RETRIES=3)
    fake_llm.fallback = lambda request: Reply(content="no idea")

    stub.actor.send(1, 42, {"text": "x"})
    [update] = wait_for(lambda: fake_core.job_updates(1))

    assert stub.recorder.delays() == [20, 40, 80]  # LLM_RETRY_BACKOFF_SECONDS * 2**retry
    assert update["status"] == "failed"
    assert (
        update["error"]
        == "invalid LLM response after 4 attempts: the answer contained no JSON object"
    )
    assert len(fake_llm.chat_requests()) == 4
    assert all("retries" not in entry.options for entry in stub.recorder.delayed)  # no retry spent


@pytest.mark.parametrize("status", [500, 503, 529, 401, 404])
def test_an_unavailable_llm_opens_the_breaker_and_holds_the_job_until_the_next_probe(
    stub, fake_llm, fake_core, status
):
    stub.configure(LLM_PROBE_INTERVAL_SECONDS=30)
    fake_llm.fallback = lambda request: Reply(status=status, body={"error": {"message": "no"}})

    message = stub.actor.send(2, 42, {"text": "x"})
    [held] = wait_for(lambda: stub.recorder.delayed)

    breaker = breaker_status()
    assert breaker.is_open and str(status) in (breaker.last_error or "")
    assert breaker.next_probe_at is not None and breaker.since is not None
    assert 29.9 <= breaker.next_probe_at - breaker.since <= 30.0
    # Held until the next probe, LLM_PROBE_INTERVAL_SECONDS after the breaker opened (less
    # the time the failed call's own probe took, for a server error).
    assert held.options["eta"] / 1000 == pytest.approx(breaker.next_probe_at, abs=0.01)
    assert held.delay_ms <= 30_000
    assert held.message_id == message.message_id and "retries" not in held.options
    assert fake_core.job_updates(2) == []  # held, not failed


def test_job_retries_back_off_exponentially_between_the_bounds(stub, fake_llm, fake_core):
    stub.configure(
        JOB_MAX_RETRIES=3, JOB_RETRY_MIN_BACKOFF_SECONDS=0.01, JOB_RETRY_MAX_BACKOFF_SECONDS=10
    )
    fake_llm.answers["IntentResult"] = GOOD_TASK
    fake_core.failures.extend([503] * 4)  # the result's report fails every time

    stub.actor.send(3, 42, {"text": "x"})
    wait_for(lambda: len(stub.recorder.delayed) == 3 and len(fake_core.job_updates(3)) == 5)

    for retry, delay in enumerate(stub.recorder.delays()):  # Dramatiq's backoff, jittered
        assert 10 * 2**retry <= delay <= 2 * 10 * 2**retry, (retry, stub.recorder.delays())
    assert [entry.options["retries"] for entry in stub.recorder.delayed] == [1, 2, 3]
    assert len(fake_llm.chat_requests()) == 1  # the retries reuse the LLM's answer
    assert fake_core.job_updates(3)[-1]["status"] == "failed"


def test_job_retries_never_wait_longer_than_the_maximum(stub, fake_llm, fake_core):
    stub.configure(
        JOB_MAX_RETRIES=3, JOB_RETRY_MIN_BACKOFF_SECONDS=0.02, JOB_RETRY_MAX_BACKOFF_SECONDS=0.03
    )
    fake_llm.answers["IntentResult"] = GOOD_TASK
    fake_core.failures.extend([503] * 3)

    stub.actor.send(4, 42, {"text": "x"})
    wait_for(lambda: len(fake_core.job_updates(4)) == 4)

    # Past the maximum, Dramatiq draws between half of it and all of it.
    assert len(stub.recorder.delays()) == 3
    assert all(15 <= delay <= 30 for delay in stub.recorder.delays()), stub.recorder.delays()
    assert fake_core.job_updates(4)[-1]["status"] == "completed"


def test_a_job_without_a_free_slot_waits_in_the_broker_not_as_a_retry(
    stub, fake_llm, fake_core, redis_client
):
    stub.configure(LLM_MAX_CONCURRENT_REQUESTS=1, LLM_CAPACITY_WAIT_SECONDS=0)
    fake_llm.answers["IntentResult"] = GOOD_TASK
    store = CapacityStore(redis_client, "llmw", CapacityLimits(max_concurrent=1))
    assert store.acquire("another-process", priority=0, tokens=0).granted

    stub.actor.send(5, 42, {"text": "x"})
    first = wait_for(lambda: stub.recorder.delayed)[0]

    assert 100 <= first.delay_ms <= 125  # the shortest wait, spread by up to a quarter
    assert "retries" not in first.options
    assert fake_llm.chat_requests() == []


def test_a_429_makes_the_job_wait_out_the_fleets_cooldown(stub, fake_llm, fake_core, redis_client):
    stub.configure(LLM_RETRY_AFTER_MAX_SECONDS=300)
    fake_llm.push(
        Reply(status=429, body={"error": {"message": "slow"}}, headers={"Retry-After": "2"})
    )
    fake_llm.answers["IntentResult"] = GOOD_TASK

    stub.actor.send(6, 42, {"text": "x"})
    [waited] = wait_for(lambda: stub.recorder.delayed)

    cooldown = CapacityStore(redis_client, "llmw", CapacityLimits()).cooldown()
    assert cooldown is not None
    [refused] = fake_llm.chat_requests()
    assert 2.0 - 0.01 <= cooldown.until - refused["at"] < 2.0 + 1.0  # the Retry-After, from then
    # Back once the cooldown is over, spread by up to a quarter of what was left of it.
    assert cooldown.until - 0.01 <= waited.options["eta"] / 1000 <= cooldown.until + 0.5 + 0.01
    assert waited.delay_ms <= 2_500
    assert "retries" not in waited.options
    assert not breaker_status().is_open  # a 429 is not an outage
