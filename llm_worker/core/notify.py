"""Notifications to the Telegram bot through a Redis stream, each published once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from llm_worker import keys
from llm_worker.lua import lua_script
from llm_worker.observability import tracing

#: Claim the notification's key ``KEYS[1]`` (for ``ARGV[1]`` seconds) and ``XADD`` its
#: body ``ARGV[2]`` to the stream ``KEYS[2]``, trimmed to about ``ARGV[3]`` entries, in
#: one step; or do nothing.
_PUBLISH_ONCE = lua_script(__name__, "notify_publish_once.lua")

#: For each claim ``KEYS[2..n-1]``: claim it and ``XADD`` its body ``ARGV[i+2]`` to the
#: stream ``KEYS[1]`` unless claimed before; then ``SET KEYS[n] ARGV[3] EX ARGV[2]``.
#: The last ``ARGV`` is the stream's bound (``MAXLEN ~``).
_PUBLISH_ALL_AND_MARK = lua_script(__name__, "notify_publish_all_and_mark.lua")


@dataclass(frozen=True)
class Notification:
    """One notification to publish when a job completes: its message type and content."""

    message_type: str
    content: dict[str, Any]


@dataclass(frozen=True)
class Publication:
    """One notification ready to publish: its claim key and its entry's JSON."""

    claim: str
    data: str


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
      max_entries: about how many entries the stream keeps (``NOTIFY_STREAM_MAX_ENTRIES``):
        each ``XADD`` trims the oldest beyond it.
    """

    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        *,
        prefix: str = "llmw",
        dedupe_seconds: int = 1_296_000,
        max_entries: int = 1_000_000,
    ) -> None:
        self._redis = client
        self._max_entries = max_entries
        self.stream = stream
        self._prefix = prefix
        self._ttl = dedupe_seconds
        self._publish_once = client.register_script(_PUBLISH_ONCE)
        self._publish_all_and_mark = client.register_script(_PUBLISH_ALL_AND_MARK)

    def prepare(
        self,
        *,
        user_id: int,
        job_id: str | int,
        message_type: str,
        content: dict[str, Any],
        job_type: str = "job",
        discriminator: str | int = 0,
    ) -> Publication:
        """The notification's claim key and entry, for :meth:`publish_and_mark`."""
        data = {
            "user_id": user_id,
            "job_id": job_id,
            "message_type": message_type,
            "content": content,
        }
        claim = keys.notified(self._prefix, job_type, job_id, message_type, discriminator)
        return Publication(claim, json.dumps(data, ensure_ascii=False))

    def publish_and_mark(
        self, publications: Sequence[Publication], *, key: str, value: str, ttl_seconds: int
    ) -> list[str]:
        """Publish each notification not published before and set ``key`` to ``value``
        (for ``ttl_seconds``), atomically, in one round trip; return the new entry ids."""
        with self._span(len(publications)) as span:
            entries = self._publish_all_and_mark(
                keys=[self.stream, *(p.claim for p in publications), key],
                args=[
                    self._ttl,
                    ttl_seconds,
                    value,
                    *(p.data for p in publications),
                    self._max_entries,
                ],
            )
            span.set_attribute("llm_worker.notifications.published", len(entries or []))
        return [e.decode() if isinstance(e, bytes) else str(e) for e in entries or []]

    def _span(self, count: int) -> tracing.OpenSpan | Any:
        """The span of one publish of ``count`` notifications to the stream."""
        if not tracing.enabled():
            return tracing.NO_SPAN
        attributes: dict[str, tracing.AttributeValue] = {
            "messaging.system": "redis",
            "messaging.operation.type": "send",
            "messaging.operation.name": "xadd",
            "messaging.destination.name": self.stream,
            "messaging.batch.message_count": count,
        }
        return tracing.span(f"send {self.stream}", kind="producer", attributes=attributes)

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
        publication = self.prepare(
            user_id=user_id,
            job_id=job_id,
            message_type=message_type,
            content=content,
            job_type=job_type,
            discriminator=discriminator,
        )
        return self.publish_prepared(publication)

    def publish_prepared(self, publication: Publication) -> str | None:
        """Publish a notification made by :meth:`prepare`; ``None`` if published before."""
        with self._span(1) as span:
            entry = self._publish_once(
                keys=[publication.claim, self.stream],
                args=[self._ttl, publication.data, self._max_entries],
            )
            span.set_attribute("llm_worker.notifications.published", int(entry is not None))
        if entry is None:
            return None
        return entry.decode() if isinstance(entry, bytes) else str(entry)
