"""Job kinds: how a job's arguments are checked and its terminal states reported.

Every LLM actor declares a ``job_kind`` option.  The middleware asks it to
validate arguments and to report a job that failed, was skipped as stale or
expired, without knowing what kind of job it is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import dramatiq
from dramatiq import get_encoder

from llm_worker.core.client import JobStatus
from llm_worker.core.outbox import Report
from llm_worker.errors import InvalidPayload
from llm_worker.identity import AnyMessage, JobRef, message_key
from llm_worker.jobs.arguments import parse_arguments
from llm_worker.jobs.schemas import Payload
from llm_worker.llm.usage import Usage
from llm_worker.settings import SendCheckSettings

if TYPE_CHECKING:  # the context is handed in; it imports this package
    from llm_worker.services import Services

logger = logging.getLogger("llm_worker.outcomes")

#: The actor option that holds an LLM job actor's :class:`JobKind`.
JOB_KIND_OPTION = "job_kind"


class JobKind(Protocol):
    """What the middleware needs to know about one kind of LLM job."""

    #: The default priority of its LLM calls (``LLM_PRIORITY_<ACTOR>`` sets another).
    priority: int

    def validate(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """Check the actor's arguments.

        Raises:
          InvalidPayload: naming the offending argument or field.
        """
        ...

    def failed(self, svc: Services, message: AnyMessage, error: str, attempts: int) -> None:
        """Report a job that failed for good."""
        ...

    def skipped(self, svc: Services, message: AnyMessage, error: str) -> None:
        """Report a job skipped as stale."""
        ...

    def expired(self, svc: Services, message: AnyMessage, error: str) -> None:
        """Report a job that waited too long for the LLM."""
        ...


@dataclass(frozen=True)
class CoreJob:
    """A life-organiser job: ``(job_id, user_id, payload)``, state kept in Core.

    Failed and expired jobs get ``status: failed`` in Core and an
    ``llm_failure`` / ``llm_expiry`` notification; skipped jobs get
    ``status: skipped`` and no notification.

    Parameters:
      payload_model: the pydantic model of the payload.
      priority: the default priority of its LLM calls (lower runs first).
    """

    payload_model: type[Payload]
    priority: int = 10

    def validate(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """See :meth:`JobKind.validate`."""
        parse_arguments(args, kwargs, self.payload_model)

    def failed(self, svc: Services, message: AnyMessage, error: str, attempts: int) -> None:
        """See :meth:`JobKind.failed`."""
        job = JobRef.from_message(message)
        content = {"job_type": job.job_type, "attempts": attempts, "error": error}
        _report(svc, message, "failed", error, ("llm_failure", content))

    def skipped(self, svc: Services, message: AnyMessage, error: str) -> None:
        """See :meth:`JobKind.skipped`."""
        _report(svc, message, "skipped", error, None)

    def expired(self, svc: Services, message: AnyMessage, error: str) -> None:
        """See :meth:`JobKind.expired`."""
        job = JobRef.from_message(message)
        _report(
            svc,
            message,
            "expired",
            error,
            ("llm_expiry", {"job_type": job.job_type, "error": error}),
        )


def _report(
    svc: Services,
    message: AnyMessage,
    outcome: str,
    error: str,
    notification: tuple[str, dict[str, Any]] | None,
) -> None:
    """Hand the terminal state to the outbox: Core first, then the notification (where
    there is a user), retried until Core accepts."""
    job = JobRef.from_message(message)
    status: JobStatus = "skipped" if outcome == "skipped" else "failed"
    if job.job_id is None:
        logger.error("cannot report %s to Core: the message has no usable job_id", outcome)
        svc.outbox.finish_unreported(message_key(message), status)
        return
    report = Report(
        message_id=message_key(message),
        job_type=job.job_type,
        job_id=job.job_id,
        user_id=job.user_id,
        status=status,
        error=error,
        usage=Usage.from_options(message.options).as_dict(),
        notification=notification,
    )
    svc.outbox.send(report)


def job_size(message: AnyMessage) -> int:
    """The size of a job, the one measured against ``JOB_MAX_PAYLOAD_BYTES``: its arguments
    (``{"args": [...], "kwargs": {...}}``) in bytes as Dramatiq's encoder writes them.

    Nothing the broker or the middleware add (ids, timestamps, options) counts, so a
    job measures the same at send time, at every pick-up and after any re-enqueue.
    """
    return len(get_encoder().encode({"args": list(message.args), "kwargs": message.kwargs}))


def check_job(config: SendCheckSettings, kind: JobKind, message: AnyMessage) -> None:
    """Validate a job message's arguments and size (:func:`job_size` against
    ``JOB_MAX_PAYLOAD_BYTES`` of ``config``: a producer's :class:`SendCheckSettings`
    or a worker's settings).

    Raises:
      InvalidPayload: naming the offending argument or field, or the size.
    """
    limit = config.job_max_payload_bytes
    size = job_size(message)
    if size > limit:
        raise InvalidPayload("payload", f"the job is {size} bytes, over the limit of {limit}")
    kind.validate(message.args, message.kwargs)


def job_kind_of(broker: dramatiq.Broker, message: AnyMessage) -> JobKind | None:
    """The actor's ``job_kind`` option, or ``None`` for actors that are not LLM jobs."""
    return actor_job_kind(broker.get_actor(message.actor_name))


def actor_job_kind(actor: dramatiq.Actor[Any, Any]) -> JobKind | None:
    """``actor``'s :data:`JOB_KIND_OPTION`, or ``None`` for an actor that is not an LLM job."""
    kind: JobKind | None = actor.options.get(JOB_KIND_OPTION)
    return kind
