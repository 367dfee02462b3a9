"""Notifications to the Telegram bot through a Redis stream, each published once."""

from __future__ import annotations

import json
from typing import Any

import redis

from . import keys

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

#: Claim the notification's key and publish it in one step, or do nothing.
_PUBLISH_ONCE = """
if redis.call('set', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
    return redis.call('xadd', KEYS[2], '*', 'data', ARGV[2])
end
return false
"""


class Notifier:
    """Publishes ``XADD {stream} * data <json>`` entries, at most once per notification.

    A notification is identified by job type, job id, message type and a
    discriminator (the event's index for ``event_confirmation``); the claim
    and the ``XADD`` happen atomically in Redis, so a retried or redelivered
    job never publishes the same notification twice while the claim lives.

    Parameters:
      client: a Redis client.
      stream: the stream's key (``NOTIFY_STREAM``).
      prefix: ``KEY_PREFIX`` of the claim keys.
      dedupe_seconds: how long a claim lives (``NOTIFY_DEDUPE_SECONDS``).
    """

    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        *,
        prefix: str = "llmw",
        dedupe_seconds: int = 1_296_000,
    ) -> None:
        self._redis = client
        self.stream = stream
        self._prefix = prefix
        self._ttl = dedupe_seconds
        self._publish_once = client.register_script(_PUBLISH_ONCE)

    def publish(
        self,
        *,
        user_id: int,
        job_id: str | int,
        message_type: str,
        content: dict[str, Any],
        job_type: str = "job",
        discriminator: str | int = 0,
    ) -> str | None:
        """Publish one notification; return its stream entry id, or ``None`` if it was
        published before."""
        data = {
            "user_id": user_id,
            "job_id": job_id,
            "message_type": message_type,
            "content": content,
        }
        claim = keys.notified(self._prefix, job_type, job_id, message_type, discriminator)
        entry = self._publish_once(
            keys=[claim, self.stream], args=[self._ttl, json.dumps(data, ensure_ascii=False)]
        )
        if entry is None:
            return None
        return entry.decode() if isinstance(entry, bytes) else str(entry)
