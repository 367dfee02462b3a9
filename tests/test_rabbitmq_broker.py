"""The RabbitMQ broker fails safe like the Redis broker: a middleware hook that fails
around a message (its store away) puts the message back on its queue instead of letting
it run unchecked or be acknowledged unreplaced.  Against the real RabbitMQ."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from dramatiq import Worker
from dramatiq.middleware import Middleware

from tests.support import BASE_AMQP_URL, amqp_answers, wait_for

pytestmark = pytest.mark.skipif(not amqp_answers(BASE_AMQP_URL), reason="needs RabbitMQ")


class FailingHook(Middleware):
    """A middleware whose ``before_process_message`` (or ``after_process_message``) hook
    raises for the first ``failures`` deliveries, as a hook whose Redis is away would."""

    def __init__(self, where: str, failures: int) -> None:
        self.where = where
        self.failures = failures
        self.calls = 0
        self.last_failed = False

    def _maybe_fail(self) -> None:
        self.calls += 1
        self.last_failed = self.calls <= self.failures
        if self.last_failed:
            raise ConnectionError("the hook's store is away")

    def before_process_message(self, broker: Any, message: Any) -> None:
        if self.where == "before":
            self._maybe_fail()

    def after_process_message(self, broker: Any, message: Any, **kwargs: Any) -> None:
        if self.where == "after":
            self._maybe_fail()


@pytest.fixture
def rabbitmq_broker(rabbitmq_url: str) -> Iterator[Any]:
    """A fail-safe RabbitMQ broker of the test's own (its own queue, deleted afterwards)."""
    from llm_worker.broker.rabbitmq_broker import RecoveringRabbitmqBroker

    broker = RecoveringRabbitmqBroker(url=rabbitmq_url, middleware=[])
    broker.redelivery_pause_seconds = 0.05
    yield broker
    for queue in list(broker.get_declared_queues()):
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            broker.channel.queue_delete(name)
    broker.close()


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_failing_hook_redelivers_the_message_instead_of_acknowledging_it(rabbitmq_broker, where):
    """Two deliveries whose hook fails, then one whose hook succeeds (one worker thread).
    Dramatiq's own broker would run the actor unchecked after a failed before-hook, and
    acknowledge the message after a failed after-hook: either way it is done after one
    delivery."""
    hook = FailingHook(where, failures=2)
    rabbitmq_broker.add_middleware(hook)
    runs: list[bool] = []  # per run of the actor: did the before-hook of its delivery fail?
    queue = f"failsafe-{uuid.uuid4().hex[:8]}"

    @dramatiq.actor(broker=rabbitmq_broker, queue_name=queue)
    def record() -> None:
        runs.append(hook.where == "before" and hook.last_failed)

    record.send()
    worker = Worker(rabbitmq_broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        wait_for(lambda: hook.calls >= 3, timeout=30)
        rabbitmq_broker.join(queue, timeout=30_000)
        worker.join()
    finally:
        worker.stop()
    assert hook.calls == 3
    # before: the actor never ran on a delivery whose hook failed, it ran once, on the third;
    # after: it ran on each delivery, the message coming back each time its after-hook failed
    assert runs == ([False] if where == "before" else [False, False, False])
    assert rabbitmq_broker.get_queue_message_counts(queue) == (0, 0, 0)  # nothing dead-lettered
