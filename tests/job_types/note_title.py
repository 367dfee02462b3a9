"""``note_title``: a short title for a note; a job type declared the way a new one is.

Everything the worker needs to know about it is here: its record, its payload and
result models, its prompt entry and its actor.
"""

from __future__ import annotations

from pydantic import Field, StrictStr

from actors.job_actor import job_actor
from llm_worker.jobs.job import Job
from llm_worker.jobs.registry import JobType
from llm_worker.jobs.schemas import Payload, Result, longest


class NoteTitlePayload(Payload):
    """A note that needs a title."""

    text: StrictStr = Field(min_length=1)


class NoteTitleResult(Result):
    """A title of a few words."""

    title: str = Field(min_length=1, json_schema_extra=longest(60))


NOTE_TITLE = JobType(
    name="note_title",
    queue="llm.note_title",
    payload_model=NoteTitlePayload,
    result_model=NoteTitleResult,
    notification="llm_note_title_result",
    priority=5,
    prompts={
        "default": {"task": "Write a title of at most six words for the note.", "max_tokens": 40}
    },
)


@job_actor(NOTE_TITLE)
def note_title(job: Job[NoteTitlePayload]) -> None:
    """Title ``payload["text"]``."""
    result = job.ask(NoteTitleResult, data={"text": job.payload.text}).model_dump()
    job.complete(result)
