"""``task_match``: does a new note belong to one of the user's open tasks?"""

from __future__ import annotations

from llm_worker.jobs.job import Job, Notification
from llm_worker.jobs.schemas import CoreTask, TaskMatchPayload, TaskMatchResult

from .job_actor import job_actor

#: A match counts only above this confidence.
MATCH_THRESHOLD = 0.7


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


@job_actor("task_match", queue="llm.task_match", payload_model=TaskMatchPayload)
def task_match(job: Job[TaskMatchPayload]) -> None:
    """Match ``payload["content"]`` against the user's open tasks read from Core."""
    tasks = job.services.core.open_tasks(job.user_id)
    data = {
        "note": job.payload.content,
        "open_tasks": [task.model_dump() for task in tasks],
    }
    answer = job.ask(TaskMatchResult, data=data)
    result = accepted_match(answer, tasks).model_dump()
    notifications = (
        [Notification("llm_task_match_result", result)] if result["task_id"] is not None else []
    )
    job.complete(result, notifications)
