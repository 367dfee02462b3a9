"""``email_extract``: calendar events found in an email."""

from __future__ import annotations

from llm_worker.jobs.job import Job, Notification
from llm_worker.jobs.schemas import EmailExtractPayload, EmailExtractResult

from .job_actor import job_actor

#: Events at or below this confidence are dropped.
EVENT_THRESHOLD = 0.7


@job_actor("email_extract", queue="llm.email_extract", payload_model=EmailExtractPayload)
def email_extract(job: Job[EmailExtractPayload]) -> None:
    """Extract events from the email; keep those with confidence over 0.7.

    One ``event_confirmation`` notification is published per kept event.
    """
    data = job.payload.model_dump()
    answer = job.ask(EmailExtractResult, data=data)
    events = [event.model_dump() for event in answer.events if event.confidence > EVENT_THRESHOLD]
    job.complete(
        {"events": events}, [Notification("event_confirmation", event) for event in events]
    )
