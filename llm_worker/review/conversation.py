"""Review conversations in Redis: ``{p}:review:conversation:{review_request_id}:{chunk_id}``
(:func:`~llm_worker.keys.review_conversation`).

The value is a JSON list of messages, each ``{"role", "kind", "content"}``
plus ``tool_call_id`` on tool calls and their results and ``chunk`` on the
first message.  The conversation's state is read off the list: a pending
tool call is an assistant ``tool_call`` message that is last; a finished
conversation ends with an assistant ``answer``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import redis

from llm_worker import keys


@dataclass(frozen=True)
class Conversation:
    """A chunk's conversation so far."""

    messages: tuple[dict[str, Any], ...]

    @property
    def exists(self) -> bool:
        """Whether a review of this chunk has started."""
        return bool(self.messages)

    @property
    def finished(self) -> bool:
        """Whether the model has given its final answer."""
        return bool(self.messages) and self.messages[-1].get("kind") == "answer"

    @property
    def pending_tool_call_id(self) -> str | None:
        """The id of the tool call waiting for ``CONTEXT_READY``, if any."""
        if self.messages and self.messages[-1].get("kind") == "tool_call":
            return str(self.messages[-1].get("tool_call_id"))
        return None

    @property
    def tool_calls(self) -> int:
        """How many tool calls the model has made."""
        return sum(1 for m in self.messages if m.get("kind") == "tool_call")

    @property
    def chunk(self) -> dict[str, Any]:
        """The chunk under review, kept on the first message."""
        return dict(self.messages[0].get("chunk") or {}) if self.messages else {}


class ConversationStore:
    """Loads and saves conversations, one turn at a time under a lock.

    Parameters:
      client: Redis at ``REDIS_URL``.
      prefix: ``KEY_PREFIX``.
      ttl_seconds: lifetime of a conversation, refreshed on each save.
      lock_seconds: how long one turn may hold the conversation's lock.
    """

    def __init__(
        self, client: redis.Redis, prefix: str, *, ttl_seconds: int, lock_seconds: float
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._lock_seconds = lock_seconds

    def load(self, review_request_id: str | int, chunk_id: str | int) -> Conversation:
        """The conversation, empty if it does not exist (or expired)."""
        raw = self._redis.get(keys.review_conversation(self._prefix, review_request_id, chunk_id))
        return Conversation(tuple(json.loads(raw)) if raw else ())

    def save(
        self,
        review_request_id: str | int,
        chunk_id: str | int,
        messages: list[dict[str, Any]],
    ) -> None:
        """Replace the conversation and refresh its TTL."""
        key = keys.review_conversation(self._prefix, review_request_id, chunk_id)
        self._redis.set(key, json.dumps(messages, ensure_ascii=False), ex=self._ttl)

    @contextmanager
    def turn(self, review_request_id: str | int, chunk_id: str | int) -> Iterator[None]:
        """Hold the conversation's lock for one turn (duplicates wait, then see its result)."""
        key = keys.review_conversation_lock(self._prefix, review_request_id, chunk_id)
        lock = self._redis.lock(
            key, timeout=self._lock_seconds, blocking_timeout=self._lock_seconds
        )
        if not lock.acquire():
            raise TimeoutError(f"conversation {key} stayed locked")
        try:
            yield
        finally:
            with suppress(redis.exceptions.LockError):
                lock.release()
