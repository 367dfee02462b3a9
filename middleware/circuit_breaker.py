"""Hold every LLM job back, fleet-wide, while the LLM is unavailable."""

from __future__ import annotations

import logging
import time
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.common import dq_name
from dramatiq.middleware import SkipMessage

from llm_worker import message_options, metrics
from llm_worker.breaker import BreakerStatus, BreakerStore
from llm_worker.errors import LLMUnavailable
from llm_worker.job_outcome import note_outcome
from llm_worker.outcomes import as_message, job_kind_of
from llm_worker.services import Services, services

from .periodic import PeriodicPass

logger = logging.getLogger(__name__)


def breaker_store(svc: Services) -> BreakerStore:
    """The breaker state store for the given services."""
    config = svc.settings
    return BreakerStore(
        svc.redis, config.key_prefix, outage_retention=config.llm_unavailable_expiry_seconds * 2
    )


def breaker_status() -> BreakerStatus:
    """The breaker's state for operators: closed or open, since, last error, next probe."""
    return breaker_store(services()).status()


def llm_queues(broker: dramatiq.Broker) -> set[str]:
    """Queues (and their delay queues) of the actors that call the LLM."""
    names = {actor.queue_name for actor in broker.actors.values() if actor.options.get("job_kind")}
    return names | {dq_name(name) for name in names}


class CircuitBreaker(PeriodicPass):
    """A fleet-wide circuit breaker for the LLM, with its state in Redis.

    - The first :class:`~llm_worker.errors.LLMUnavailable` opens the breaker
      for every process on every machine; the job goes back to the broker
      (delayed until the next probe), counting as no retry.
    - Each worker process runs a watcher thread that reads the state every
      ``poll_interval`` seconds and, while it is open, pauses the consumers of
      every LLM queue: messages stay in the broker, no thread takes LLM jobs.
      A job already fetched when the breaker opens is held back the same way.
    - While open, one process in the fleet probes the LLM each
      ``LLM_PROBE_INTERVAL_SECONDS`` (or later, when the server asked for a
      longer ``Retry-After``).  A successful probe closes the breaker and the
      consumers resume.

    Parameters:
      poll_interval: seconds between the watcher's reads of the state.
    """

    thread_name = "llm-breaker-watcher"

    def __init__(self, *, poll_interval: float = 0.25) -> None:
        super().__init__(interval=poll_interval)
        self._open = False
        self._worker: dramatiq.Worker | None = None

    # -- worker lifecycle --------------------------------------------------------

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._worker = worker
        self._open = False
        super().after_worker_boot(broker, worker)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        super().before_worker_shutdown(broker, worker)
        self._set_paused(broker, paused=False)

    # -- message hooks -------------------------------------------------------------

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if job_kind_of(broker, message) is None:
            return
        status = self._current(broker)
        if status is not None:
            self._hold(broker, message, status.next_probe_at or time.time())
            raise SkipMessage("LLM unavailable: held back until it recovers")

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if not isinstance(exception, LLMUnavailable):
            return
        svc = services()
        now = time.time()
        wait = max(svc.settings.llm_probe_interval_seconds, exception.retry_after or 0.0)
        store = breaker_store(svc)
        if store.open(str(exception), next_probe_at=now + wait, now=now):
            log = logger.critical if exception.needs_operator else logger.warning
            log("LLM unavailable, breaker opened for all workers: %s", exception)
        self._open = True
        self._set_paused(broker, paused=True)
        status = store.status()
        self._hold(broker, message, status.next_probe_at or now + wait)

    # -- internals -------------------------------------------------------------------

    def _current(self, broker: dramatiq.Broker) -> BreakerStatus | None:
        """The open status if the breaker is open, else ``None``."""
        if self.running and not self._open:
            return None
        status = breaker_store(services()).status()
        return status if status.is_open else None

    def _hold(self, broker: dramatiq.Broker, message: MessageProxy, until: float) -> None:
        note_outcome("held")
        now = time.time()
        message.options.setdefault(message_options.HELD_SINCE, now)
        delay_ms = max(1, int((until - now) * 1000))
        broker.enqueue(as_message(message), delay=delay_ms)
        logger.debug("held back %s for %d ms: LLM unavailable", message.message_id, delay_ms)

    def _set_paused(self, broker: dramatiq.Broker, *, paused: bool) -> None:
        worker = self._worker
        if worker is None:
            return
        queues = llm_queues(broker)
        for name, consumer in list(worker.consumers.items()):
            if name in queues and consumer.paused != paused:
                consumer.pause() if paused else consumer.resume()

    def run_pass(self, broker: dramatiq.Broker) -> None:
        """Follow the shared state (pause or resume the LLM queues) and, while the
        breaker is open, probe the LLM when this process wins the probe."""
        svc = services()
        store = breaker_store(svc)
        status = store.status()
        if status.is_open != self._open:
            logger.info(
                "breaker %s: %s LLM queues",
                status.state,
                "pausing" if status.is_open else "resuming",
            )
        self._open = status.is_open
        metrics.set_breaker_open(status.is_open)
        self._set_paused(broker, paused=status.is_open)
        if not status.is_open or time.time() < (status.next_probe_at or 0):
            return
        interval = svc.settings.llm_probe_interval_seconds
        if not store.claim_probe(interval):
            return
        try:
            latency = svc.llm.probe(svc.settings.llm_text_model)
        except LLMUnavailable as exc:
            metrics.count_probe("failed")
            wait = max(interval, exc.retry_after or 0.0)
            store.probe_failed(str(exc), next_probe_at=time.time() + wait)
            logger.warning("LLM probe failed, next in %.1fs: %s", wait, exc)
            return
        metrics.count_probe("ok")
        since = store.close()
        self._open = False
        self._set_paused(broker, paused=False)
        outage = time.time() - since if since else 0.0
        logger.warning("LLM back (probe %.2fs); breaker closed after %.0fs", latency, outage)
