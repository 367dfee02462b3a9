"""``followup``: a clarifying question for an ambiguous message."""

from __future__ import annotations

from llm_worker.jobs.job import Job, Notification
from llm_worker.jobs.schemas import FollowupPayload, FollowupResult

from .job_actor import job_actor


@job_actor("followup", queue="llm.followup", payload_model=FollowupPayload)
def followup(job: Job[FollowupPayload]) -> None:
    """Write one follow-up question about ``payload["text"]`` (and its optional context)."""
    data = {"text": job.payload.text, "context": job.payload.context}
    result = job.ask(FollowupResult, data=data).model_dump()
    job.complete(result, [Notification("llm_followup_result", result)])
