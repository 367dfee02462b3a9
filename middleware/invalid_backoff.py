"""Retry invalid LLM answers with exponential backoff and feedback."""

from __future__ import annotations

import logging
import time
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy

from llm_worker.errors import InvalidLLMResponse
from llm_worker.jobs import retry as message_options
from llm_worker.jobs.outcome import note_outcome
from llm_worker.jobs.retry import backoff, send_again
from llm_worker.llm.usage import Usage
from llm_worker.observability import metrics
from llm_worker.services import services

from .base import JobMiddleware

logger = logging.getLogger(__name__)


def backoff_delay(retries: int, base_seconds: float) -> float:
    """Seconds before invalid-answer retry number ``retries`` (0-based): base * 2**retries."""
    return backoff(retries, base=base_seconds)


class InvalidResponseBackoff(JobMiddleware):
    """Re-ask the model after an invalid answer, up to ``LLM_MAX_RETRIES`` times.

    Each retry is a delayed re-enqueue (``LLM_RETRY_BACKOFF_SECONDS`` doubling:
    1, 2, 4, 8, 16 s by default), never a sleeping thread, and carries the
    invalid answer and the validation error so the next prompt can say what
    was wrong.  When the retries are used up, or the job has spent more than
    ``LLM_JOB_MAX_SECONDS`` since its first invalid answer, the job fails: Core gets
    ``status: failed`` with the last validation error, the user an
    ``llm_failure`` notification, and the message goes to the dead-letter queue.
    """

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if not isinstance(exception, InvalidLLMResponse):
            return
        svc = services()
        config = svc.settings
        retries = int(message.options.get(message_options.INVALID_RETRIES, 0))
        started = float(message.options.setdefault(message_options.FIRST_ATTEMPT_AT, time.time()))
        delay = backoff_delay(retries, config.llm_retry_backoff_seconds)
        over_time = time.time() + delay - started > config.llm_job_max_seconds
        if retries >= config.llm_max_retries or over_time:
            message.fail()
            attempts = max(retries + 1, Usage.from_options(message.options).attempts)
            error = f"invalid LLM response after {attempts} attempts: {exception.problem}"
            self.end_job(svc, broker, message, "failed", error, attempts=attempts)
            return
        note_outcome("retrying", exception.problem)
        metrics.count_invalid(message.actor_name)
        message.options[message_options.INVALID_RETRIES] = retries + 1
        message.options[message_options.FEEDBACK] = {
            "answer": exception.answer,
            "problem": exception.problem,
        }
        logger.info(
            "invalid LLM answer for %s (retry %d of %d in %.2fs): %s",
            message.message_id,
            retries + 1,
            config.llm_max_retries,
            delay,
            exception.problem,
        )
        send_again(broker, message, delay, reason="invalid_answer")
