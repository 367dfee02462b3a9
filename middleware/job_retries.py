"""Dramatiq's Retries, narrowed to the errors no other middleware owns."""

from __future__ import annotations

import logging
import time
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Retries

from llm_worker.core.refusals import note_refused, note_unauthorized
from llm_worker.errors import (
    CoreRefused,
    CoreUnauthorized,
    InvalidLLMResponse,
    JobExpired,
    JobInProgress,
    JobRejected,
    LLMAtCapacity,
    LLMUnavailable,
    failure_reason,
)
from llm_worker.identity import JobRef
from llm_worker.jobs import retry as message_options
from llm_worker.jobs.outcome import note_outcome
from llm_worker.jobs.retry import backoff, send_again
from llm_worker.llm.usage import Usage
from llm_worker.services import Services, services
from llm_worker.settings import Settings

from .base import JobMiddleware

logger = logging.getLogger(__name__)


#: Errors another middleware owns: the circuit breaker, the capacity limits, the invalid-answer
#: backoff, the expiry check.
OWNED_ELSEWHERE = (LLMUnavailable, LLMAtCapacity, InvalidLLMResponse, JobExpired)


class JobRetries(JobMiddleware, Retries):
    """Retries that leave LLM errors to their own middleware and never end silently.

    - :class:`~llm_worker.errors.LLMUnavailable` (rate-limited included),
      :class:`~llm_worker.errors.LLMAtCapacity` and
      :class:`~llm_worker.errors.InvalidLLMResponse` are left alone: the
      circuit breaker, the capacity middleware and the invalid-response
      backoff own them.  Any other :class:`~llm_worker.errors.LLMError` is
      retried here like any error.
    - :class:`~llm_worker.errors.JobRejected` fails the job at once; that
      includes :class:`~llm_worker.errors.CoreRefused` (Core refused the result
      for good: logged at ERROR and counted).
    - :class:`~llm_worker.errors.CoreUnauthorized` holds the job: it is sent
      again after ``CORE_UNAUTHORIZED_HOLD_SECONDS`` without spending a retry
      (logged at CRITICAL, shown by ``llm-worker status``).
    - :class:`~llm_worker.errors.JobInProgress` (another message of the same
      job is calling the LLM) re-enqueues the message after
      ``JOB_RETRY_MIN_BACKOFF_SECONDS``, counting as no retry.
    - Anything else (Core failing, a bug) gets Dramatiq's ordinary retries,
      bounded by ``JOB_MAX_RETRIES`` with exponential backoff between
      ``JOB_RETRY_MIN_BACKOFF_SECONDS`` and ``JOB_RETRY_MAX_BACKOFF_SECONDS``.

    Whenever a job message is failed here, Core gets ``status: failed`` with
    the error and the user an ``llm_failure`` notification.
    """

    def configure(self, config: Settings) -> None:
        """Take the retry bounds from ``config``, the process's settings."""
        self.max_retries = config.job_max_retries
        self.min_backoff = int(config.job_retry_min_backoff_seconds * 1000)
        self.max_backoff = int(config.job_retry_max_backoff_seconds * 1000)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None or isinstance(exception, OWNED_ELSEWHERE):
            return
        svc = services()
        if isinstance(exception, JobInProgress):
            self._wait(svc, broker, message)
            return
        if isinstance(exception, CoreUnauthorized) and self.kind_of(broker, message):
            self._hold(svc, broker, message, exception)
            return
        if isinstance(exception, CoreRefused):
            note_refused(exception, job_id=JobRef.from_message(message).job_id, request="result")
        if isinstance(exception, JobRejected):
            message.fail()
        else:
            self.configure(svc.settings)
            super().after_process_message(broker, message, result=result, exception=exception)
        if message.failed:
            attempts = Usage.from_options(message.options).attempts
            reason, reference = failure_reason(exception)
            if reference is not None:
                logger.error(
                    "%s failed with an unexpected error, worker log reference %s: %s: %s",
                    message.message_id,
                    reference,
                    type(exception).__name__,
                    exception,
                )
            self.end_job(svc, broker, message, "failed", reason, attempts=attempts)

    def _hold(
        self,
        svc: Services,
        broker: dramatiq.Broker,
        message: MessageProxy,
        error: CoreUnauthorized,
    ) -> None:
        """Send the job again after the hold interval, its retries untouched."""
        hold = svc.settings.core_unauthorized_hold_seconds
        note_unauthorized(
            svc.redis,
            svc.settings.key_prefix,
            error,
            job_id=JobRef.from_message(message).job_id,
            request="result",
            hold_seconds=hold,
        )
        note_outcome("held", str(error))
        message.options.setdefault(message_options.CORE_HELD_SINCE, time.time())
        send_again(broker, message, hold, reason="core_held")

    def _wait(self, svc: Services, broker: dramatiq.Broker, message: MessageProxy) -> None:
        """Send the job again shortly: another message of it holds its LLM lease."""
        note_outcome("waiting", "another message of the same job is calling the LLM")
        waits = int(message.options.get(message_options.LEASE_WAITS, 0)) + 1
        message.options[message_options.LEASE_WAITS] = waits
        delay = backoff(waits, base=svc.settings.job_retry_min_backoff_seconds, factor=1)
        delay_ms = send_again(broker, message, delay, reason="lease")
        logger.info(
            "job %s waits %d ms for another message of the same job (wait %d)",
            message.message_id,
            delay_ms,
            waits,
        )
