"""``review_chunk``: one turn of the review of a pull request's diff chunk."""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from llm_worker.broker.outbound import send_message
from llm_worker.errors import JobRejected, LLMError
from llm_worker.review.kind import ReviewJob, parse_review_arguments
from llm_worker.review.loop import ReviewTurn
from llm_worker.review.protocol import GIT_QUEUE, REVIEW_ACTOR, REVIEW_QUEUE, SUB_CHUNK_OPTION
from llm_worker.services import services


@dramatiq.actor(
    actor_name=REVIEW_ACTOR,
    queue_name=REVIEW_QUEUE,
    job_kind=ReviewJob(),
    throws=(JobRejected, LLMError),
    max_age_seconds=0,
)
def review_chunk(
    review_request_id: str | int, chunk_id: str | int, event: str, payload: dict[str, Any]
) -> None:
    """Handle ``REVIEW_REQUEST`` (start a chunk's review) or ``CONTEXT_READY``
    (the git worker's answer to a tool call).

    The model's answer goes to the git worker on ``git_queue``: a
    ``fetch_context`` for a tool call, a ``post_comment`` for comments or
    ``no_issues``.  Review chunks never go stale (``max_age_seconds=0``).
    """
    args = parse_review_arguments((review_request_id, chunk_id, event, payload), {})

    def send_git(actor_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        send_message(GIT_QUEUE, actor_name, args, kwargs)

    def send_review(sub_chunk_id: str, sub_event: str, sub_payload: dict[str, Any]) -> None:
        options: dict[str, Any] = {SUB_CHUNK_OPTION: True}
        review_chunk.send_with_options(
            args=(review_request_id, sub_chunk_id, sub_event, sub_payload), **options
        )

    message = CurrentMessage.get_current_message()
    ReviewTurn(services(), args, send_git, send_review, message).run()
