"""The ``review_chunk`` job kind: argument checks and how failures reach the git worker."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from llm_worker.broker.outbound import send_message
from llm_worker.errors import InvalidPayload
from llm_worker.identifiers import id_problem
from llm_worker.identity import AnyMessage, is_job_id
from llm_worker.jobs.arguments import bind_arguments, validation_problem
from llm_worker.review.protocol import CONTEXT_READY, GIT_QUEUE, POST_COMMENT, REVIEW_REQUEST
from llm_worker.review.schemas import ContextReadyPayload, ReviewArguments, ReviewRequestPayload

if TYPE_CHECKING:  # the context is handed in; it imports this package
    from llm_worker.services import Services

logger = logging.getLogger("llm_worker.review")

#: The default priority of a review's LLM calls: batch work, like most job types.
REVIEW_PRIORITY = 10

REVIEW_ARGUMENT_NAMES = ("review_request_id", "chunk_id", "event", "payload")
_PAYLOADS: dict[str, type[ReviewRequestPayload] | type[ContextReadyPayload]] = {
    REVIEW_REQUEST: ReviewRequestPayload,
    CONTEXT_READY: ContextReadyPayload,
}


def parse_review_arguments(args: Sequence[Any], kwargs: Mapping[str, Any]) -> ReviewArguments:
    """Validate ``(review_request_id, chunk_id, event, payload)``.

    Raises:
      InvalidPayload: naming the offending argument or payload field.
    """
    bound = bind_arguments(args, kwargs, REVIEW_ARGUMENT_NAMES)
    for name in ("review_request_id", "chunk_id"):
        problem = id_problem(bound[name])
        if problem is not None:
            raise InvalidPayload(name, problem)
    model = _PAYLOADS.get(bound["event"])
    if model is None:
        raise InvalidPayload("event", f"must be one of {', '.join(_PAYLOADS)}")
    if not isinstance(bound["payload"], dict):
        raise InvalidPayload("payload", "must be an object")
    try:
        payload = model.model_validate(bound["payload"])
    except ValidationError as exc:
        raise validation_problem(exc, "payload") from None
    return ReviewArguments(
        review_request_id=bound["review_request_id"],
        chunk_id=bound["chunk_id"],
        event=bound["event"],
        payload=payload,
    )


class ReviewJob:
    """Review chunks have no Core job: a chunk that fails, is skipped or
    expires is reported to the git worker as ``post_comment(review_request_id,
    chunk_id, comments=[], error=...)``."""

    #: The default priority of a review's LLM calls (``LLM_PRIORITY_REVIEW_CHUNK`` sets another).
    priority = REVIEW_PRIORITY

    def validate(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """See :meth:`JobKind.validate`."""
        parse_review_arguments(args, kwargs)

    def _report(self, message: AnyMessage, error: str) -> None:
        bound = dict(zip(REVIEW_ARGUMENT_NAMES, message.args, strict=False))
        bound.update(message.kwargs)
        rr, chunk_id = bound.get("review_request_id"), bound.get("chunk_id")
        logger.warning("review of %s:%s ended without comments: %s", rr, chunk_id, error)
        if is_job_id(rr) and is_job_id(chunk_id):
            kwargs = {"comments": [], "error": error}
            send_message(GIT_QUEUE, POST_COMMENT, (rr, chunk_id), kwargs)

    def failed(self, svc: Services, message: AnyMessage, error: str, attempts: int) -> None:
        """See :meth:`JobKind.failed`."""
        self._report(message, error)

    def skipped(self, svc: Services, message: AnyMessage, error: str) -> None:
        """See :meth:`JobKind.skipped`."""
        self._report(message, error)

    def expired(self, svc: Services, message: AnyMessage, error: str) -> None:
        """See :meth:`JobKind.expired`."""
        self._report(message, error)
