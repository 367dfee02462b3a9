"""Recording a job's terminal state in Core and telling the user."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy

from .arguments import ARGUMENT_NAMES
from .core_api import JobStatus
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


def _report(
    services: Services,
    job: JobRef,
    status: JobStatus,
    error: str,
    notification: tuple[str, dict[str, Any]] | None,
) -> None:
    """Send the terminal state to Core, then the notification (where there is a user)."""
    if job.job_id is None:
        logger.error("cannot report %s to Core: the message has no usable job_id", status)
        return
    services.core.update_job(job.job_id, status, error=error)
    if notification is not None and job.user_id is not None:
        message_type, content = notification
        services.notifier.publish(
            user_id=job.user_id, job_id=job.job_id, message_type=message_type, content=content
        )


def report_failure(services: Services, job: JobRef, error: str, *, attempts: int) -> None:
    """Mark the job failed in Core and publish an ``llm_failure`` notification."""
    logger.warning("job failed: actor=%s job_id=%s error=%s", job.job_type, job.job_id, error)
    content = {"job_type": job.job_type, "attempts": attempts, "error": error}
    _report(services, job, "failed", error, ("llm_failure", content))


def report_skipped(services: Services, job: JobRef, error: str) -> None:
    """Mark the job skipped in Core (no notification)."""
    logger.info("job skipped: actor=%s job_id=%s reason=%s", job.job_type, job.job_id, error)
    _report(services, job, "skipped", error, None)


def report_expired(services: Services, job: JobRef, error: str) -> None:
    """Mark the job failed as expired in Core and publish an ``llm_expiry`` notification."""
    logger.warning("job expired: actor=%s job_id=%s", job.job_type, job.job_id)
    content = {"job_type": job.job_type, "error": error}
    _report(services, job, "failed", error, ("llm_expiry", content))
