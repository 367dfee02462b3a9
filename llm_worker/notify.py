"""Notifications to the Telegram bot through a Redis stream."""

from __future__ import annotations

import json
from typing import Any

import redis

#: Message types this service publishes.
MESSAGE_TYPES = (
    "llm_image_tag_result",
    "llm_intent_result",
    "llm_followup_result",
    "llm_task_match_result",
    "event_confirmation",
    "llm_failure",
    "llm_expiry",
)


class Notifier:
    """Publishes ``XADD {stream} * data <json>`` entries.

    Parameters:
      client: a Redis client.
      stream: the stream's key (``NOTIFY_STREAM``).
    """

    def __init__(self, client: redis.Redis, stream: str) -> None:
        self._redis = client
        self.stream = stream

    def publish(
        self, *, user_id: int, job_id: str | int, message_type: str, content: dict[str, Any]
    ) -> str:
        """Publish one notification and return its stream entry id."""
        data = {
            "user_id": user_id,
            "job_id": job_id,
            "message_type": message_type,
            "content": content,
        }
        entry = self._redis.xadd(self.stream, {"data": json.dumps(data, ensure_ascii=False)})
        return entry.decode() if isinstance(entry, bytes) else str(entry)
