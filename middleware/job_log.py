"""One log line (and one metric) per job outcome."""

from __future__ import annotations

import logging
import time
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy

from llm_worker.identity import JobRef, delivery_key, is_job_id
from llm_worker.jobs import retry as message_options
from llm_worker.jobs.outcome import take_outcome
from llm_worker.llm.usage import Usage
from llm_worker.observability import metrics, tracing

from .base import JobMiddleware

logger = logging.getLogger("llm_worker.jobs")


def _review_ids(message: MessageProxy) -> str | None:
    """``review_request_id:chunk_id`` for review messages, else ``None``."""
    ids = message.args[:2]
    return ":".join(map(str, ids)) if len(ids) == 2 and all(map(is_job_id, ids)) else None


class JobOutcomeLog(JobMiddleware):
    """Log each LLM job's outcome once, with its actor, ids, attempt, duration and tokens.

    Outcomes: ``completed``, ``failed``, ``skipped`` (stale), ``expired``,
    ``held`` (LLM unavailable, back in the broker), ``retrying`` (will run
    again).  Only ids and counts are logged, never payloads.  Put it first in
    the stack so its ``after_*`` hooks run after every other middleware's.
    """

    def __init__(self) -> None:
        self._started: dict[str, float] = {}

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        take_outcome()
        self._started[delivery_key(message)] = time.monotonic()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        noted = take_outcome()
        if noted is None:
            if exception is None:
                noted = ("completed", None)
            else:
                noted = ("failed" if message.failed else "retrying", str(exception))
        self._log(broker, message, *noted)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        noted = take_outcome() or (("failed" if message.failed else "skipped"), None)
        self._log(broker, message, *noted)

    def _log(
        self, broker: dramatiq.Broker, message: MessageProxy, outcome: str, error: str | None
    ) -> None:
        started = self._started.pop(delivery_key(message), time.monotonic())
        if self.kind_of(broker, message) is None:
            return
        job = JobRef.from_message(message)
        usage = Usage.from_options(message.options)
        attempt = message_options.attempt(message.options)
        fields = {
            "actor": message.actor_name,
            "job_id": job.job_id if job.job_id is not None else _review_ids(message),
            "user_id": job.user_id,
            "attempt": attempt,
            "duration_ms": int((time.monotonic() - started) * 1000),
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "outcome": outcome,
        }
        text = " ".join(f"{name}={value}" for name, value in fields.items())
        if error:
            text += f" error={error}"
        level = logging.WARNING if outcome == "failed" else logging.INFO
        logger.log(level, "job %s: %s", outcome, text, extra=fields)
        metrics.count_job(message.actor_name, outcome)
        if tracing.enabled():
            _trace_outcome(fields, error)


def _trace_outcome(fields: dict[str, Any], error: str | None) -> None:
    """Put the job's fields and outcome on the span of its processing
    (:class:`~middleware.Tracing`'s, still current: this hook runs before its end)."""
    span = tracing.current_span()
    span.set_attribute("llm_worker.job.type", str(fields["actor"]))
    if fields["job_id"] is not None:
        span.set_attribute("llm_worker.job.id", str(fields["job_id"]))
    span.set_attribute("llm_worker.job.outcome", str(fields["outcome"]))
    span.set_attribute("llm_worker.job.input_tokens", int(fields["prompt_tokens"]))
    span.set_attribute("llm_worker.job.output_tokens", int(fields["completion_tokens"]))
    if fields["outcome"] == "failed":
        tracing.mark_error(span, error or "failed")
    elif error:
        span.add_event(f"job {fields['outcome']}", {"llm_worker.error": error[:300]})
