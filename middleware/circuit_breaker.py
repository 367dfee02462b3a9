"""Hold every LLM job back, fleet-wide, while the LLM is unavailable."""

from __future__ import annotations

import logging
import time
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.common import dq_name
from dramatiq.middleware import SkipMessage

from llm_worker.errors import FallbackUnavailable, LLMRateLimited, LLMUnavailable
from llm_worker.fleet.breaker import BreakerStatus, BreakerStore
from llm_worker.fleet.cooldown import capped_retry_after, start_cooldown
from llm_worker.jobs import retry as message_options
from llm_worker.jobs.kind import actor_job_kind
from llm_worker.jobs.outcome import note_outcome
from llm_worker.jobs.retry import send_again
from llm_worker.llm.providers import Provider
from llm_worker.llm.usage import Usage
from llm_worker.observability import metrics
from llm_worker.services import Services, services

from .base import JobMiddleware
from .periodic import PeriodicPass

logger = logging.getLogger(__name__)


def breaker_status() -> BreakerStatus:
    """The breaker's state for operators: closed or open, since, last error, next probe."""
    return services().breaker.status()


def fallback_breaker_status() -> BreakerStatus | None:
    """The fallback LLM's breaker state, or ``None`` when no fallback is configured."""
    svc = services()
    if not svc.settings.llm_fallback_base_url:
        return None
    return svc.fallback_breaker.status()


def hold_until(primary: BreakerStatus, fallback: BreakerStatus | None) -> float | None:
    """When held jobs may run again, or ``None`` when jobs run (the primary's breaker is
    closed, or it is open and the fallback's is closed)."""
    if not primary.is_open:
        return None
    if fallback is None:
        return primary.next_probe_at or time.time()
    if not fallback.is_open:
        return None
    return min(primary.next_probe_at or time.time(), fallback.next_probe_at or time.time())


def llm_queues(broker: dramatiq.Broker) -> set[str]:
    """Queues (and their delay queues) of the actors that call the LLM."""
    names = {actor.queue_name for actor in broker.actors.values() if actor_job_kind(actor)}
    return names | {dq_name(name) for name in names}


class CircuitBreaker(JobMiddleware, PeriodicPass):
    """A fleet-wide circuit breaker for the LLM, with its state in Redis.

    - The first :class:`~llm_worker.errors.LLMUnavailable` opens the breaker
      for every process on every machine; the job goes back to the broker
      (delayed until the next probe), counting as no retry.  A 429
      (:class:`~llm_worker.errors.LLMRateLimited`) is not an outage: it starts
      the fleet's cooldown instead (see :class:`~middleware.LLMCapacity`).
    - With a fallback LLM (``LLM_FALLBACK_BASE_URL``), jobs go to the fallback
      while the primary's breaker is open; the fallback has its own breaker,
      and only with both open are jobs held back.
    - Each worker process runs a watcher thread that reads the state every
      ``poll_interval`` seconds and, while jobs are held back, pauses the
      consumers of every LLM queue: messages stay in the broker, no thread takes
      LLM jobs.  A job already fetched then is held back the same way.
    - While a breaker is open, one process in the fleet probes that LLM each
      ``LLM_PROBE_INTERVAL_SECONDS`` (or later, when the server asked for a
      longer ``Retry-After``, at most ``LLM_RETRY_AFTER_MAX_SECONDS``).  A
      successful probe closes it: the consumers resume, and jobs go back to
      the primary.
    - A server error (HTTP 5xx but 503 and 529) while that LLM's breaker is
      closed is first checked with a probe from the same thread, when no other
      probe of it ran in the last interval.  When the LLM answers it, the server
      is up and fails this one request: only this job is held back for a probe
      interval, and after ``LLM_REQUEST_MAX_SERVER_ERRORS`` such errors it fails
      with the server's error.  The breaker stays closed.

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
        if self.kind_of(broker, message) is None:
            return
        until = self._current(broker)
        if until is not None:
            self._hold(broker, message, until)
            raise SkipMessage("LLM unavailable: held back until it recovers")

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if not isinstance(exception, LLMUnavailable) or isinstance(exception, LLMRateLimited):
            return
        svc = services()
        now = time.time()
        config = svc.settings
        retry_after = capped_retry_after(config, exception.retry_after) or 0.0
        wait = max(config.llm_probe_interval_seconds, retry_after)
        failed_fallback = isinstance(exception, FallbackUnavailable)
        store = svc.fallback_breaker if failed_fallback else svc.breaker
        if exception.is_server_error and self._answers_probes(svc, store):
            self._request_failed(broker, svc, message, exception)
            return
        if store.open(str(exception), next_probe_at=now + wait, now=now):
            log = logger.critical if exception.needs_operator else logger.warning
            which = "fallback LLM" if failed_fallback else "LLM"
            log("%s unavailable, breaker opened for all workers: %s", which, exception)
        until = self._states(svc)
        self._open = until is not None
        self._set_paused(broker, paused=self._open)
        self._hold(broker, message, until or now)

    # -- requests the LLM fails while it is healthy --------------------------------------

    def _answers_probes(self, svc: Services, store: BreakerStore) -> bool:
        """Whether the LLM (of ``store``: the primary or the fallback), which just failed a
        request with a server error, answers a probe now (a 429 counts: it is up).

        ``False`` without probing while its breaker is open or another probe of it ran in
        the last interval (the probe lock: still one probe per interval for the fleet): the
        breaker then opens as for any outage and the fleet's probe decides.
        """
        if store.status().is_open or not store.claim_probe(svc.settings.llm_probe_interval_seconds):
            return False
        provider, model = svc.llm, svc.settings.llm_text_model
        if store.fallback:
            if svc.fallback_llm is None:
                return False
            provider, model = svc.fallback_llm, svc.fallback_model(model)
        try:
            provider.probe(model)
        except LLMRateLimited as exc:
            start_cooldown(svc.settings, svc.capacity, exc)
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
        metrics.count_failing_request(message.actor_name)
        logger.error(
            "LLM keeps failing the request of %s (breaker left closed): %s",
            message.message_id,
            exception,
        )
        attempts = Usage.from_options(message.options).attempts
        self.end_job(svc, broker, message, "failed", error, attempts=attempts)

    # -- internals -------------------------------------------------------------------

    def _states(self, svc: Services) -> float | None:
        """:func:`hold_until` of the current states in Redis."""
        primary = svc.breaker.status()
        fallback = None
        if svc.settings.llm_fallback_base_url:
            fallback = svc.fallback_breaker.status()
        return hold_until(primary, fallback)

    def _current(self, broker: dramatiq.Broker) -> float | None:
        """When held jobs may run again if jobs are held back now, else ``None``."""
        if self.running and not self._open:
            return None
        return self._states(services())

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
        delay_ms = send_again(broker, message, until - now, reason="held")
        logger.debug("held back %s for %d ms: %s", message.message_id, delay_ms, reason)

    def _set_paused(self, broker: dramatiq.Broker, *, paused: bool) -> None:
        worker = self._worker
        if worker is None:
            return
        queues = llm_queues(broker)
        for name, consumer in list(worker.consumers.items()):
            if name in queues and consumer.paused != paused:
                consumer.pause() if paused else consumer.resume()

    def run_pass(self, broker: dramatiq.Broker) -> None:
        """Follow the shared state (pause or resume the LLM queues) and, while a
        breaker is open, probe its LLM when this process wins the probe."""
        svc = services()
        primary_store = svc.breaker
        primary = primary_store.status()
        fallback_store = fallback = None
        if svc.settings.llm_fallback_base_url:
            fallback_store = svc.fallback_breaker
            fallback = fallback_store.status()
        holding = hold_until(primary, fallback) is not None
        if holding != self._open:
            logger.info("LLM jobs %s", "held back: pausing LLM queues" if holding else "resuming")
        self._open = holding
        metrics.set_breaker_open(primary.is_open)
        metrics.set_serving_fallback(primary.is_open and fallback is not None and not holding)
        self._set_paused(broker, paused=holding)
        self._probe_if_due(svc, primary_store, primary, svc.llm, svc.settings.llm_text_model)
        if fallback_store is not None and fallback is not None and svc.fallback_llm is not None:
            model = svc.fallback_model(svc.settings.llm_text_model)
            self._probe_if_due(svc, fallback_store, fallback, svc.fallback_llm, model)
        if holding and hold_until(primary_store.status(), fallback) is None:
            self._open = False
            self._set_paused(broker, paused=False)

    def _probe_if_due(
        self,
        svc: Services,
        store: BreakerStore,
        status: BreakerStatus,
        provider: Provider,
        model: str,
    ) -> None:
        """Probe one LLM whose breaker is open, once per interval for the whole fleet;
        close the breaker when it answers (a 429 counts as answering: it is up)."""
        if not status.is_open or time.time() < (status.next_probe_at or 0):
            return
        interval = svc.settings.llm_probe_interval_seconds
        if not store.claim_probe(interval):
            return
        which = "fallback LLM" if store.fallback else "LLM"
        try:
            latency = provider.probe(model)
        except LLMRateLimited as exc:
            start_cooldown(svc.settings, svc.capacity, exc)
            latency = 0.0
        except LLMUnavailable as exc:
            metrics.count_probe("failed")
            wait = max(interval, capped_retry_after(svc.settings, exc.retry_after) or 0.0)
            store.probe_failed(str(exc), next_probe_at=time.time() + wait)
            logger.warning("%s probe failed, next in %.1fs: %s", which, wait, exc)
            return
        metrics.count_probe("ok")
        since = store.close()
        outage = time.time() - since if since else 0.0
        logger.warning("%s back (probe %.2fs); breaker closed after %.0fs", which, latency, outage)
