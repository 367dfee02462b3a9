"""Where Dramatiq 2.2's Redis broker keeps its messages, written down once.

Read from ``dramatiq/brokers/redis.py`` and its Lua ``dispatch.lua``; every key
is under the broker's namespace ``{ns}`` (Dramatiq's default ``dramatiq``):

- ``{ns}:{queue}`` (list): ids of the messages waiting to be fetched;
- ``{ns}:{queue}.msgs`` (hash): id -> payload of every message not yet
  acknowledged, those in flight included;
- ``{ns}:{queue}.DQ`` and ``{ns}:{queue}.DQ.msgs``: the same for its delay queue
  (a message's due time is its payload's ``eta`` option);
- ``{ns}:{queue}.XQ`` (sorted set): dead-lettered ids, scored by when they died
  (ms); a delay queue's dead letters go to its queue's;
- ``{ns}:{queue}.XQ.msgs`` (hash): id -> payload of the dead letters;
- ``{ns}:__acks__.{broker_id}.{queue}`` (set): ids one broker fetched and has not
  acknowledged (``{queue}`` may be a delay queue);
- ``{ns}:__heartbeats__`` (sorted set): broker ids scored by their last command (ms);
- ``{ns}:{queue}.unreadable`` (hash), this project's own: id -> raw payload of the
  queue's (and its delay queue's) messages that could not be parsed.

A message's id in these keys is the ``redis_message_id`` option of its latest
enqueue (each retry or re-enqueue gets a new one), not its ``message_id``.
:class:`RedisKeys` names the keys; :class:`RedisLayout` also reads them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import dq_name, xq_name

#: The namespace of a :class:`RedisBroker` built without one.
DEFAULT_NAMESPACE = "dramatiq"

#: How many entries one ``SCAN``/``HSCAN`` step asks for.
SCAN_COUNT = 1000


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


class RedisKeys:
    """The names of a Redis broker's keys under ``namespace`` (see the module docstring).

    A "queue name" here is a queue, its delay queue (``{queue}.DQ``) or its dead
    letter queue (``{queue}.XQ``), as Dramatiq's Lua script receives it.

    Dramatiq has no API for these names: ``dispatch.lua`` (``dramatiq/brokers/redis/``)
    builds them from the namespace ``RedisBroker._dispatch`` passes it (``acks``,
    ``heartbeats``, ``queue_full_name``, ``queue_messages``, ``xqueue_full_name``,
    ``xqueue_messages``), and ``dramatiq/common.py``'s ``dq_name`` and ``xq_name`` name
    the delay and dead letter queues.  They are copied here from Dramatiq 2.2: check them
    against ``dispatch.lua`` on every upgrade.
    """

    def __init__(self, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.namespace = namespace

    @staticmethod
    def delay_queue(queue: str) -> str:
        """``{queue}.DQ``: the queue's delay queue (unchanged if already one)."""
        return dq_name(queue)

    @staticmethod
    def is_delay_queue(queue_name: str) -> bool:
        """Whether ``queue_name`` is a delay queue."""
        return queue_name.endswith(".DQ")

    @staticmethod
    def dead_letter_queue(queue: str) -> str:
        """``{queue}.XQ``: the dead letter queue of ``queue`` or of its delay queue."""
        return xq_name(queue)

    def ids_key(self, queue_name: str) -> str:
        """``{ns}:{queue_name}``: a queue's (or delay queue's) list of waiting ids; a
        dead letter queue's sorted set of ids, scored by when they died (ms)."""
        return f"{self.namespace}:{queue_name}"

    def messages_key(self, queue_name: str) -> str:
        """``{ns}:{queue_name}.msgs``: hash of id -> payload of the messages of
        ``queue_name`` (a queue's until acknowledged, in flight ones included)."""
        return f"{self.namespace}:{queue_name}.msgs"

    def acks_key(self, broker_id: str, queue_name: str) -> str:
        """``{ns}:__acks__.{broker_id}.{queue_name}``: set of the ids the broker
        ``broker_id`` fetched from ``queue_name`` and has not acknowledged."""
        return f"{self.namespace}:__acks__.{broker_id}.{queue_name}"

    @property
    def heartbeats_key(self) -> str:
        """``{ns}:__heartbeats__``: sorted set of broker ids scored by their last
        command (ms since the epoch)."""
        return f"{self.namespace}:__heartbeats__"

    def unreadable_key(self, queue_name: str) -> str:
        """``{ns}:{queue}.unreadable``: hash of the queue's (and its delay queue's)
        messages that could not be parsed, id -> raw payload."""
        canonical = queue_name[:-3] if self.is_delay_queue(queue_name) else queue_name
        return f"{self.namespace}:{canonical}.unreadable"


class RedisLayout(RedisKeys):
    """A Redis broker's keys (:class:`RedisKeys`) and reads of them through ``client``.

    Parameters:
      client: a client of the broker's Redis database (replies as bytes).
      namespace: the broker's namespace.
    """

    def __init__(self, client: Any, namespace: str = DEFAULT_NAMESPACE) -> None:
        super().__init__(namespace)
        self.client = client

    @classmethod
    def of(cls, broker: RedisBroker) -> RedisLayout:
        """The layout of ``broker``'s keys, read through its client."""
        return cls(broker.client, broker.namespace)

    def acks_keys(self, queue_name: str) -> Iterator[bytes]:
        """Every broker's acks set of ``queue_name`` (found by ``SCAN``), not those of
        another queue whose name ends in ``.{queue_name}``."""
        prefix = f"{self.namespace}:__acks__."
        suffix = f".{queue_name}"
        pattern = f"{_glob_escape(prefix)}*{_glob_escape(suffix)}"
        for key in self.client.scan_iter(pattern, count=SCAN_COUNT):
            broker_id = key.decode(errors="replace")[len(prefix) : -len(suffix)]
            if "." not in broker_id:  # Dramatiq's broker ids are UUIDs
                yield key

    def in_flight_count(self, queue_name: str) -> int:
        """How many ids of ``queue_name`` brokers have fetched and not acknowledged."""
        return sum(int(self.client.scard(key)) for key in self.acks_keys(queue_name))

    def is_in_flight(self, queue_name: str, redis_id: Any) -> bool:
        """Whether some broker fetched ``redis_id`` from ``queue_name`` and has not
        acknowledged it."""
        return any(self.client.sismember(key, redis_id) for key in self.acks_keys(queue_name))

    def ready_count(self, queue: str) -> int:
        """How many messages of ``queue`` wait to be fetched."""
        return int(self.client.llen(self.ids_key(queue)))

    def dead_letter_count(self, queue: str) -> int:
        """How many dead letters ``queue`` (and its delay queue) has."""
        return int(self.client.zcard(self.ids_key(self.dead_letter_queue(queue))))

    def dead_letter_ids(self, queue: str) -> list[bytes]:
        """The ids of ``queue``'s dead letters, the first to die first."""
        return list(self.client.zrange(self.ids_key(self.dead_letter_queue(queue)), 0, -1))

    def unreadable_count(self, queue: str) -> int:
        """How many messages of ``queue`` (and its delay queue) were moved aside as
        unreadable."""
        return int(self.client.hlen(self.unreadable_key(queue)))

    def unacknowledged_count(self, queue: str) -> int:
        """How many messages of ``queue`` and its delay queue are not acknowledged yet
        (waiting, delayed or in flight)."""
        return int(self.client.hlen(self.messages_key(queue))) + int(
            self.client.hlen(self.messages_key(self.delay_queue(queue)))
        )

    def payloads(self, queue_name: str) -> Iterator[tuple[bytes, bytes]]:
        """``(id, raw payload)`` of every message of ``queue_name``'s hash (``HSCAN``)."""
        yield from self.client.hscan_iter(self.messages_key(queue_name), count=SCAN_COUNT)

    def messages(self, queue_name: str) -> Iterator[Message[Any]]:
        """The messages of ``queue_name``'s hash, skipping those that cannot be parsed."""
        for _, data in self.payloads(queue_name):
            try:
                yield Message.decode(data)
            except Exception:  # an unreadable entry is the sweeper's to move aside
                continue

    def queued_messages(self, queue: str) -> Iterator[Message[Any]]:
        """The messages of ``queue`` not yet acknowledged: waiting or in flight."""
        return self.messages(queue)

    def delayed_messages(self, queue: str) -> Iterator[Message[Any]]:
        """The messages of ``queue``'s delay queue (those prefetched by a worker too)."""
        return self.messages(self.delay_queue(queue))

    def dead_letters(self, queue: str) -> Iterator[Message[Any]]:
        """The dead letters of ``queue`` (and of its delay queue)."""
        return self.messages(self.dead_letter_queue(queue))

    def find(self, queue_name: str, message: Message[Any]) -> Message[Any] | None:
        """The stored copy of ``message`` in ``queue_name``'s hash: by its
        ``redis_message_id`` (its latest enqueue), else by its ``message_id`` (scan)."""
        redis_id = message.options.get("redis_message_id")
        raw = self.client.hget(self.messages_key(queue_name), redis_id) if redis_id else None
        if raw:
            return Message.decode(raw)
        for stored in self.messages(queue_name):
            if stored.message_id == message.message_id:
                return stored
        return None

    def worker_count(self) -> int:
        """How many broker ids have a heartbeat, however old."""
        return int(self.client.zcard(self.heartbeats_key))

    def live_workers(self, since_ms: int) -> int:
        """How many broker ids sent a command at or after ``since_ms`` (ms since the epoch)."""
        return int(self.client.zcount(self.heartbeats_key, since_ms, "+inf"))
