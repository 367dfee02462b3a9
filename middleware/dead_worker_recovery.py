"""Bring a killed worker process's in-flight jobs back within a bounded time."""

from __future__ import annotations

import dramatiq

from llm_worker.broker.redis_broker import RecoveringRedisBroker

from .periodic import PeriodicPass


class DeadWorkerRecovery(PeriodicPass):
    """Run Dramatiq's dead-worker recovery on every queue on a timer.

    A worker process killed mid-job leaves its fetched messages in Redis,
    acknowledged by nobody. Dramatiq requeues them once the process's heartbeat
    is older than the broker's ``heartbeat_timeout``, but only when a command on
    that same queue happens to draw maintenance. Here each worker process's
    thread runs that recovery for every declared queue and delay queue every
    ``interval`` seconds, so a dead process's jobs return at most ``interval``
    seconds after its heartbeat timed out. With RabbitMQ, which redelivers a
    closed connection's messages itself, it does nothing.

    Parameters:
      interval: seconds between two recovery passes over the queues.
    """

    thread_name = "llm-dead-worker-recovery"

    def __init__(self, *, interval: float = 10.0) -> None:
        super().__init__(interval=interval)

    def runs_on(self, broker: dramatiq.Broker) -> bool:
        """Only a Redis broker needs it."""
        return isinstance(broker, RecoveringRedisBroker)

    def run_pass(self, broker: dramatiq.Broker) -> None:
        """Recover every declared queue and delay queue once."""
        assert isinstance(broker, RecoveringRedisBroker)
        queues = broker.get_declared_queues() | broker.get_declared_delay_queues()
        for queue in sorted(queues):
            broker.recover_dead_workers(queue)
