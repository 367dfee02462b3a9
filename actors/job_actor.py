"""The decorator that declares a job actor with this service's options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq

from llm_worker.errors import JobInProgress, JobRejected, LLMError
from llm_worker.outcomes import CoreJob
from llm_worker.schemas import Payload

JobFunction = Callable[[Any, Any, Any], None]


def job_actor(
    name: str, *, queue: str, payload_model: type[Payload], **options: Any
) -> Callable[[JobFunction], dramatiq.Actor[Any, None]]:
    """Declare ``fn`` as the job actor ``name`` on ``queue``.

    Parameters:
      name: the actor name producers use.
      queue: the queue its messages go to.
      payload_model: the payload's pydantic model, checked before the actor runs.
      options: further Dramatiq actor options.
    """

    def decorate(fn: JobFunction) -> dramatiq.Actor[Any, None]:
        declare = dramatiq.actor(
            actor_name=name,
            queue_name=queue,
            job_kind=CoreJob(payload_model),
            throws=(JobRejected, LLMError, JobInProgress),
            **options,
        )
        return declare(fn)

    return decorate
