"""``task_match``: does a new note belong to one of the user's open tasks?"""

from __future__ import annotations

from pydantic import Field, StrictInt, StrictStr

from llm_worker.core.client import CoreTask
from llm_worker.jobs.job import Job
from llm_worker.jobs.registry import JobType
from llm_worker.jobs.schemas import Confidence, Payload, Result, longest

from .job_actor import job_actor

#: A match counts only above this confidence.
MATCH_THRESHOLD = 0.7


class TaskMatchPayload(Payload):
    """A new note to match against the user's open tasks."""

    content: StrictStr = Field(min_length=1)


class TaskMatchResult(Result):
    """The open task a note belongs to, if any."""

    task_id: StrictInt | StrictStr | None
    confidence: Confidence
    reason: str = Field(json_schema_extra=longest(160))


TASK_MATCH = JobType(
    name="task_match",
    queue="llm.task_match",
    payload_model=TaskMatchPayload,
    result_model=TaskMatchResult,
    notification="llm_task_match_result",
    notifies_only="task_match notifies only a match",
)


def accepted_match(result: TaskMatchResult, tasks: list[CoreTask]) -> TaskMatchResult:
    """Keep the model's match only when it is confident and names one of ``tasks``.

    The task id is returned as Core gave it (an id answered as ``"12"`` for
    task ``12`` counts); otherwise ``task_id`` becomes ``None``.
    """
    by_id = {str(task.id): task.id for task in tasks}
    task_id = by_id.get(str(result.task_id)) if result.task_id is not None else None
    if task_id is None or result.confidence <= MATCH_THRESHOLD:
        return result.model_copy(update={"task_id": None})
    return result.model_copy(update={"task_id": task_id})


@job_actor(TASK_MATCH)
def task_match(job: Job[TaskMatchPayload]) -> None:
    """Match ``payload["content"]`` against the user's open tasks read from Core."""
    tasks = job.services.core.open_tasks(job.user_id)
    data = {
        "note": job.payload.content,
        "open_tasks": [task.model_dump() for task in tasks],
    }
    answer = job.ask(TaskMatchResult, data=data)
    result = accepted_match(answer, tasks).model_dump()
    job.complete(result, [job.notification(result)] if result["task_id"] is not None else [])
