"""The decorator that declares a job actor with this service's options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from llm_worker.errors import JobInProgress, JobRejected, LLMError
from llm_worker.jobs.arguments import P
from llm_worker.jobs.job import Job
from llm_worker.jobs.kind import CoreJob

#: A job actor's body: it is handed the running :class:`~llm_worker.jobs.job.Job`.
JobBody = Callable[[Job[P]], None]


def job_actor(
    name: str, *, queue: str, payload_model: type[P], **options: Any
) -> Callable[[JobBody[P]], dramatiq.Actor[..., None]]:
    """Declare ``body`` as the job actor ``name`` on ``queue``.

    The actor takes ``(job_id, user_id, payload)``; ``body`` is called with the
    :class:`~llm_worker.jobs.job.Job` built from them (its payload validated against
    ``payload_model``) and from the message being processed.

    Parameters:
      name: the actor name producers use, and the job type.
      queue: the queue its messages go to.
      payload_model: the payload's pydantic model, checked before the actor runs.
      options: further Dramatiq actor options.
    """

    def decorate(body: JobBody[P]) -> dramatiq.Actor[..., None]:
        def run(*args: Any, **kwargs: Any) -> None:
            message = CurrentMessage.get_current_message()
            body(Job.start(name, payload_model, args, kwargs, message))

        run.__module__, run.__qualname__ = body.__module__, body.__qualname__
        run.__name__, run.__doc__ = body.__name__, body.__doc__

        declare = dramatiq.actor(
            actor_name=name,
            queue_name=queue,
            job_kind=CoreJob(payload_model),
            throws=(JobRejected, LLMError, JobInProgress),
            **options,
        )
        return declare(run)

    return decorate
