"""``email_extract``: calendar events found in an email."""

from __future__ import annotations

from typing import Any

from llm_worker.jobs import Job, Notification
from llm_worker.schemas import EmailExtractPayload, EmailExtractResult

from .job_actor import job_actor

#: Events at or below this confidence are dropped.
EVENT_THRESHOLD = 0.7


@job_actor("email_extract", queue="llm.email_extract", payload_model=EmailExtractPayload)
def email_extract(job_id: str | int, user_id: int, payload: dict[str, Any]) -> None:
    """Extract events from the email; keep those with confidence over 0.7.

    One ``event_confirmation`` notification is published per kept event.
    """
    job = Job.start("email_extract", EmailExtractPayload, (job_id, user_id, payload), {})
    data = job.payload.model_dump()
    answer = job.ask(EmailExtractResult, data=data)
    events = [event.model_dump() for event in answer.events if event.confidence > EVENT_THRESHOLD]
    job.complete(
        {"events": events}, [Notification("event_confirmation", event) for event in events]
    )
