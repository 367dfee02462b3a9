"""The decorator that declares a job actor from its :class:`~llm_worker.jobs.registry.JobType`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from llm_worker.errors import JobInProgress, JobRejected, LLMError
from llm_worker.jobs.arguments import P
from llm_worker.jobs.job import Job
from llm_worker.jobs.kind import CoreJob
from llm_worker.jobs.registry import JobType, register
from llm_worker.services import services

#: A job actor's body: it is handed the running :class:`~llm_worker.jobs.job.Job`.
JobBody = Callable[[Job[P]], None]


def job_actor(
    job_type: JobType[P], **options: Any
) -> Callable[[JobBody[P]], dramatiq.Actor[..., None]]:
    """Declare ``body`` as the actor of ``job_type`` and register the job type.

    The actor, named ``job_type.name`` on ``job_type.queue``, takes ``(job_id,
    user_id, payload)``; ``body`` is called with the :class:`~llm_worker.jobs.job.Job`
    built from them (its payload validated against ``job_type.payload_model``) and
    from the message being processed.

    Parameters:
      job_type: the job type, declared once in the actor's module.
      options: further Dramatiq actor options.
    """
    register(job_type)

    def decorate(body: JobBody[P]) -> dramatiq.Actor[..., None]:
        def run(*args: Any, **kwargs: Any) -> None:
            message = CurrentMessage.get_current_message()
            body(Job.start(job_type, args, kwargs, services(), message))

        run.__module__, run.__qualname__ = body.__module__, body.__qualname__
        run.__name__, run.__doc__ = body.__name__, body.__doc__

        declare = dramatiq.actor(
            actor_name=job_type.name,
            queue_name=job_type.queue,
            job_kind=CoreJob(job_type.payload_model, job_type.priority),
            throws=(JobRejected, LLMError, JobInProgress),
            **options,
        )
        return declare(run)

    return decorate
