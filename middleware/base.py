"""Base of the middleware that act on this service's LLM jobs."""

from __future__ import annotations

from typing import Any, Literal, NoReturn

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware, SkipMessage

from llm_worker.identity import AnyMessage
from llm_worker.jobs.expiry import claim_and_expire
from llm_worker.jobs.kind import JOB_KIND_OPTION, JobKind, job_kind_of
from llm_worker.jobs.outcome import note_outcome
from llm_worker.services import Services

#: How a middleware may end a job for good.
Ending = Literal["failed", "skipped", "expired"]


class JobMiddleware(Middleware):
    """A middleware that acts on LLM jobs: the messages of actors with a ``job_kind``.

    It declares the ``job_kind`` actor option, so any one of this service's
    middleware may be left out of a broker without breaking the actors'
    declarations, and gives its subclasses one way to read a per-job option and
    one way to end a job (:meth:`end_job`, :meth:`skip_job`).

    Actor option:
      job_kind: the actor's :class:`~llm_worker.jobs.kind.JobKind`; it marks
        the LLM job actors every middleware of this service acts on.
    """

    @property
    def actor_options(self) -> set[str]:
        """``job_kind``, with the options of the next class in the method resolution order
        (Dramatiq's ``Retries`` for :class:`~middleware.JobRetries`)."""
        return {JOB_KIND_OPTION} | super().actor_options

    def kind_of(self, broker: dramatiq.Broker, message: AnyMessage) -> JobKind | None:
        """The job kind of ``message``'s actor, or ``None`` when it is not an LLM job."""
        return job_kind_of(broker, message)

    def option(self, broker: dramatiq.Broker, message: AnyMessage, name: str, default: Any) -> Any:
        """A per-job option as Dramatiq's own middleware read theirs: the message's
        options (``send_with_options``), then the actor's, then ``default``."""
        if name in message.options:
            return message.options[name]
        return broker.get_actor(message.actor_name).options.get(name, default)

    def end_job(
        self,
        svc: Services,
        broker: dramatiq.Broker,
        message: AnyMessage,
        ending: Ending,
        error: str,
        *,
        attempts: int = 0,
    ) -> None:
        """End an LLM job for good: note the outcome (for the job's one outcome log line)
        and report it once through its job kind (Core and the user, or the git worker).

        An expired job is claimed first, so it is reported once however many workers and
        sweepers see it.  The message itself is left as it is: a hook that fails it does
        so itself, before or after this call (see :meth:`skip_job`).

        Parameters:
          ending: ``failed``, ``skipped`` (stale) or ``expired``.
          error: the reason, as Core and the log get it.
          attempts: the LLM calls the job made (for a failed job's notification).
        """
        note_outcome(ending, error)
        kind = self.kind_of(broker, message)
        if kind is None:
            return
        if ending == "failed":
            kind.failed(svc, message, error, attempts)
        elif ending == "skipped":
            kind.skipped(svc, message, error)
        else:
            claim_and_expire(svc, message, kind, error)

    def skip_job(
        self,
        svc: Services,
        broker: dramatiq.Broker,
        message: MessageProxy,
        ending: Ending,
        error: str,
    ) -> NoReturn:
        """End a job from ``before_process_message`` without running it: report it
        (:meth:`end_job`), fail the message when the job failed (it goes to the
        dead-letter queue) and skip it.

        The report comes first: when it cannot be stored the error leaves the hook
        before the message is failed or skipped.

        Raises:
          SkipMessage: always, once the job was reported.
        """
        self.end_job(svc, broker, message, ending, error)
        if ending == "failed":
            message.fail()
        raise SkipMessage(error)
