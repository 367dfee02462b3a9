"""``intent_classify``: what does a user's message want?"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictStr

from llm_worker.jobs.job import Job
from llm_worker.jobs.registry import INTERACTIVE_PRIORITY, JobType
from llm_worker.jobs.schemas import Confidence, Payload, Result

from .job_actor import job_actor


class IntentPayload(Payload):
    """A user's message."""

    text: StrictStr = Field(min_length=1)


Intent = Literal["reminder", "task", "search", "general_note", "ambiguous"]


class IntentResult(Result):
    """The intent of a message and how sure the model is."""

    intent: Intent
    confidence: Confidence


INTENT_CLASSIFY = JobType(
    name="intent_classify",
    queue="llm.intent",
    payload_model=IntentPayload,
    result_model=IntentResult,
    notification="llm_intent_result",
    priority=INTERACTIVE_PRIORITY,
)


@job_actor(INTENT_CLASSIFY)
def intent_classify(job: Job[IntentPayload]) -> None:
    """Classify ``payload["text"]`` as reminder, task, search, general_note or ambiguous."""
    result = job.ask(IntentResult, data={"text": job.payload.text}).model_dump()
    job.complete(result)
