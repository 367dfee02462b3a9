"""The review protocol: the names the LLM workers and a git worker share.

A pull request's review runs as messages between two sides:

- the LLM workers' ``review_chunk(review_request_id, chunk_id, event, payload)``
  actor on :data:`REVIEW_QUEUE`, sent :data:`REVIEW_REQUEST` to start a chunk's
  review and :data:`CONTEXT_READY` with a tool call's result;
- the git worker's :data:`FETCH_CONTEXT` (a tool call to answer) and
  :data:`POST_COMMENT` (a chunk's comments, summary or error) on :data:`GIT_QUEUE`.

The review's Redis keys (its conversations, their locks and the posted comments)
are named in :mod:`llm_worker.keys`, under ``KEY_PREFIX``.
"""

from __future__ import annotations

from typing import Final, Literal

#: The queue of the review loop's actor.
REVIEW_QUEUE: Final = "llm.review"
#: The review loop's actor.
REVIEW_ACTOR: Final = "review_chunk"

#: The git worker's queue.
GIT_QUEUE: Final = "git_queue"
#: The git worker's actor that answers a tool call with ``CONTEXT_READY``.
FETCH_CONTEXT: Final = "fetch_context"
#: The git worker's actor that receives a chunk's comments.
POST_COMMENT: Final = "post_comment"

#: The event that starts a chunk's review.
REVIEW_REQUEST: Final = "REVIEW_REQUEST"
#: The event that brings a tool call's result.
CONTEXT_READY: Final = "CONTEXT_READY"
#: Joins a split chunk's id and a part's number into the part's chunk id (``{chunk_id}#2``).
SUB_CHUNK_MARK: Final = "#"
#: The message option of a ``REVIEW_REQUEST`` the loop sent for a part of a split chunk;
#: any other ``REVIEW_REQUEST`` whose chunk id holds :data:`SUB_CHUNK_MARK` is refused,
#: so a producer's chunk id never collides with a part's.
SUB_CHUNK_OPTION: Final = "review_sub_chunk"
#: The events of ``review_chunk``.
Event = Literal["REVIEW_REQUEST", "CONTEXT_READY"]
