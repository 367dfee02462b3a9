"""Recording a job's terminal state in Core and telling the user."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy

from .arguments import ARGUMENT_NAMES
from .services import Services

logger = logging.getLogger("llm_worker.outcomes")

#: A message as actors see it, or as middleware hooks receive it.
AnyMessage = dramatiq.Message[Any] | MessageProxy


@dataclass(frozen=True)
class JobRef:
    """Who and what a message is about, read without validating the payload."""

    job_type: str
    job_id: str | int | None
    user_id: int | None

    @classmethod
    def from_message(cls, message: AnyMessage) -> JobRef:
        """Read ``job_id`` and ``user_id`` from a job message, where they are usable."""
        bound = dict(zip(ARGUMENT_NAMES, message.args, strict=False))
        bound.update(message.kwargs)
        job_id = bound.get("job_id")
        user_id = bound.get("user_id")
        if not isinstance(job_id, (str, int)) or isinstance(job_id, bool) or job_id == "":
            job_id = None
        if not isinstance(user_id, int) or isinstance(user_id, bool):
            user_id = None
        return cls(message.actor_name, job_id, user_id)


def report_failure(services: Services, job: JobRef, error: str, *, attempts: int) -> None:
    """Mark the job failed in Core and publish an ``llm_failure`` notification."""
    logger.warning("job failed: actor=%s job_id=%s error=%s", job.job_type, job.job_id, error)
    if job.job_id is None:
        logger.error("cannot report the failure to Core: the message has no usable job_id")
        return
    services.core.update_job(job.job_id, "failed", error=error)
    if job.user_id is not None:
        services.notifier.publish(
            user_id=job.user_id,
            job_id=job.job_id,
            message_type="llm_failure",
            content={"job_type": job.job_type, "attempts": attempts, "error": error},
        )


def report_skipped(services: Services, job: JobRef, error: str) -> None:
    """Mark the job skipped in Core (no notification)."""
    logger.info("job skipped: actor=%s job_id=%s reason=%s", job.job_type, job.job_id, error)
    if job.job_id is not None:
        services.core.update_job(job.job_id, "skipped", error=error)


def report_expired(services: Services, job: JobRef, error: str) -> None:
    """Mark the job failed as expired in Core and publish an ``llm_expiry`` notification."""
    logger.warning("job expired: actor=%s job_id=%s", job.job_type, job.job_id)
    if job.job_id is None:
        return
    services.core.update_job(job.job_id, "failed", error=error)
    if job.user_id is not None:
        services.notifier.publish(
            user_id=job.user_id,
            job_id=job.job_id,
            message_type="llm_expiry",
            content={"job_type": job.job_type, "error": error},
        )
