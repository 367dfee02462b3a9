"""Bring a killed worker process's in-flight jobs back within a bounded time."""

from __future__ import annotations

import logging
import threading

import dramatiq
from dramatiq.middleware import Middleware

from llm_worker.redis_broker import RecoveringRedisBroker

logger = logging.getLogger(__name__)


class DeadWorkerRecovery(Middleware):
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

    def __init__(self, *, interval: float = 10.0) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if not isinstance(broker, RecoveringRedisBroker):
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(broker,), name="llm-dead-worker-recovery", daemon=True
        )
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self, broker: RecoveringRedisBroker) -> None:
        while not self._stop.wait(self.interval):
            queues = broker.get_declared_queues() | broker.get_declared_delay_queues()
            try:
                for queue in sorted(queues):
                    broker.recover_dead_workers(queue)
            except Exception as exc:  # Redis restarting: the next pass tries again
                logger.warning("dead worker recovery failed; retrying: %s", exc)
