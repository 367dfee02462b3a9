"""``followup``: a clarifying question for an ambiguous message."""

from __future__ import annotations

from pydantic import Field, StrictStr

from llm_worker.jobs.job import Job
from llm_worker.jobs.registry import INTERACTIVE_PRIORITY, JobType
from llm_worker.jobs.schemas import Payload, Result, longest

from .job_actor import job_actor


class FollowupPayload(Payload):
    """An ambiguous message and optional conversation context."""

    text: StrictStr = Field(min_length=1)
    context: StrictStr | None = None


class FollowupResult(Result):
    """One clarifying question."""

    question: str = Field(min_length=1, json_schema_extra=longest(200))


FOLLOWUP = JobType(
    name="followup",
    queue="llm.followup",
    payload_model=FollowupPayload,
    result_model=FollowupResult,
    notification="llm_followup_result",
    priority=INTERACTIVE_PRIORITY,
)


@job_actor(FOLLOWUP)
def followup(job: Job[FollowupPayload]) -> None:
    """Write one follow-up question about ``payload["text"]`` (and its optional context)."""
    data = {"text": job.payload.text, "context": job.payload.context}
    result = job.ask(FollowupResult, data=data).model_dump()
    job.complete(result)
