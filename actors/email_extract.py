"""``email_extract``: calendar events found in an email."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Field, StrictStr

from llm_worker.jobs.job import Job
from llm_worker.jobs.registry import JobType
from llm_worker.jobs.schemas import Confidence, IsoDateTime, Payload, Result, longest
from llm_worker.prompts.dates import calendar_from

from .job_actor import job_actor

#: Events at or below this confidence are dropped.
EVENT_THRESHOLD = 0.7


class EmailExtractPayload(Payload):
    """An email to extract calendar events from."""

    subject: StrictStr
    body: StrictStr
    received_at: IsoDateTime | None = None


class CalendarEvent(Result):
    """One calendar event found in an email."""

    title: str = Field(min_length=1, json_schema_extra=longest(120))
    start: IsoDateTime
    end: IsoDateTime | None = None
    location: Annotated[str, Field(json_schema_extra=longest(120))] | None = None
    confidence: Confidence


class EmailExtractResult(Result):
    """The calendar events found in an email (possibly none)."""

    events: list[CalendarEvent] = Field(json_schema_extra={"maxItems": 5})


EMAIL_EXTRACT = JobType(
    name="email_extract",
    queue="llm.email_extract",
    payload_model=EmailExtractPayload,
    result_model=EmailExtractResult,
    notification="event_confirmation",
    notifies_only="email_extract notifies only kept events",
)


def model_data(payload: EmailExtractPayload, now: datetime) -> dict[str, Any]:
    """What the model is shown: the email and a calendar of the two weeks from its receipt."""
    return {**payload.model_dump(), "calendar": calendar_from(payload.received_at, now)}


@job_actor(EMAIL_EXTRACT)
def email_extract(job: Job[EmailExtractPayload]) -> None:
    """Extract events from the email; keep those with confidence over 0.7.

    One ``event_confirmation`` notification is published per kept event.
    """
    answer = job.ask(EmailExtractResult, data=model_data(job.payload, datetime.now(UTC)))
    events = [event.model_dump() for event in answer.events if event.confidence > EVENT_THRESHOLD]
    job.complete({"events": events}, [job.notification(event) for event in events])
