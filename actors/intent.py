"""``intent_classify``: what does a user's message want?"""

from __future__ import annotations

from llm_worker.jobs.job import Job, Notification
from llm_worker.jobs.schemas import IntentPayload, IntentResult

from .job_actor import job_actor


@job_actor("intent_classify", queue="llm.intent", payload_model=IntentPayload)
def intent_classify(job: Job[IntentPayload]) -> None:
    """Classify ``payload["text"]`` as reminder, task, search, general_note or ambiguous."""
    result = job.ask(IntentResult, data={"text": job.payload.text}).model_dump()
    job.complete(result, [Notification("llm_intent_result", result)])
