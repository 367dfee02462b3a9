"""``exploding``: a job type whose actor fails with an unexpected error holding a secret."""

from __future__ import annotations

from pydantic import StrictStr

from actors.job_actor import job_actor
from llm_worker.jobs.job import Job
from llm_worker.jobs.registry import JobType
from llm_worker.jobs.schemas import Payload, Result

#: What the unexpected error's text carries: nothing Core or the user may see.
SECRET = "postgres://admin:hunter2@db/prod"


class ExplodingPayload(Payload):
    """Anything."""

    text: StrictStr


class ExplodingResult(Result):
    """Never produced."""


EXPLODING = JobType(
    name="exploding",
    queue="llm.exploding",
    payload_model=ExplodingPayload,
    result_model=ExplodingResult,
    notification=None,
)


@job_actor(EXPLODING)
def exploding(job: Job[ExplodingPayload]) -> None:
    """Fail as a bug would."""
    raise RuntimeError(f"could not connect to {SECRET}")
