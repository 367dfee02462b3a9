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
from llm_worker.outcomes import job_kind_of
from llm_worker.services import Services, services
from llm_worker.usage import Usage

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
    - A server error (HTTP 5xx but 503 and 529) while the breaker is closed is
      first checked with a probe from the same thread, when no other probe ran
      in the last interval.  When the LLM answers it, the server is up and fails
      this one request: only this job is held back for a probe interval, and
      after ``LLM_REQUEST_MAX_SERVER_ERRORS`` such errors it fails with the
      server's error.  The breaker stays closed.

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
        store = breaker_store(svc)
        if exception.is_server_error and self._answers_probes(svc, store):
            self._request_failed(broker, svc, message, exception)
            return
        wait = max(svc.settings.llm_probe_interval_seconds, exception.retry_after or 0.0)
        if store.open(str(exception), next_probe_at=now + wait, now=now):
            log = logger.critical if exception.needs_operator else logger.warning
            log("LLM unavailable, breaker opened for all workers: %s", exception)
        self._open = True
        self._set_paused(broker, paused=True)
        status = store.status()
        self._hold(broker, message, status.next_probe_at or now + wait)

    # -- requests the LLM fails while it is healthy --------------------------------------

    def _answers_probes(self, svc: Services, store: BreakerStore) -> bool:
        """Whether the LLM, which just failed a request with a server error, answers a
        probe now.

        ``False`` without probing while the breaker is open or another probe ran in the
        last interval (the probe lock: still one probe per interval for the fleet): the
        breaker then opens as for any outage and the fleet's probe decides.
        """
        if store.status().is_open or not store.claim_probe(svc.settings.llm_probe_interval_seconds):
            return False
        try:
            svc.llm.probe(svc.settings.llm_text_model)
        except LLMUnavailable:
            metrics.count_probe("failed")
            return False
        metrics.count_probe("ok")
        return True

    def _request_failed(
        self,
        broker: dramatiq.Broker,
        svc: Services,
        message: MessageProxy,
        exception: LLMUnavailable,
    ) -> None:
        """The LLM answers probes but failed this job's request: hold this job alone for
        a probe interval, or fail it after ``LLM_REQUEST_MAX_SERVER_ERRORS`` such errors.
        The breaker stays closed."""
        errors = int(message.options.get(message_options.SERVER_ERRORS) or 0) + 1
        message.options[message_options.SERVER_ERRORS] = errors
        limit = svc.settings.llm_request_max_server_errors
        if errors < limit:
            interval = svc.settings.llm_probe_interval_seconds
            logger.warning(
                "LLM answers probes but failed the request of %s (%d of %d): %s",
                message.message_id,
                errors,
                limit,
                exception,
            )
            self._hold(broker, message, time.time() + interval, "the LLM failed its request")
            return
        error = (
            f"the LLM failed this request {errors} times, answering probes in between: {exception}"
        )
        message.fail()
        note_outcome("failed", error)
        metrics.count_failing_request(message.actor_name)
        logger.error(
            "LLM keeps failing the request of %s (breaker left closed): %s",
            message.message_id,
            exception,
        )
        kind = job_kind_of(broker, message)
        if kind is not None:
            attempts = Usage.from_options(message.options).attempts
            kind.failed(svc, message, error, attempts)

    # -- internals -------------------------------------------------------------------

    def _current(self, broker: dramatiq.Broker) -> BreakerStatus | None:
        """The open status if the breaker is open, else ``None``."""
        if self.running and not self._open:
            return None
        status = breaker_store(services()).status()
        return status if status.is_open else None

    def _hold(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        until: float,
        reason: str = "LLM unavailable",
    ) -> None:
        note_outcome("held")
        now = time.time()
        message.options.setdefault(message_options.HELD_SINCE, now)
        delay_ms = max(1, int((until - now) * 1000))
        broker.enqueue(message, delay=delay_ms)
        logger.info("held back %s for %d ms: %s", message.message_id, delay_ms, reason)

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
