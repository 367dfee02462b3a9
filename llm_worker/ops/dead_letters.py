"""``llm-worker requeue-dead``: move dead-lettered messages back to their queues."""

from __future__ import annotations

import sys
import time
from typing import Any

import dramatiq
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import xq_name

from .. import message_options
from ..usage import USAGE_OPTION

#: Options dropped on requeue: the message starts over as a fresh attempt.
RESET_OPTIONS = (
    "retries",
    "traceback",
    "requeue_timestamp",
    message_options.INVALID_RETRIES,
    message_options.FEEDBACK,
    message_options.FIRST_ATTEMPT_AT,
    USAGE_OPTION,
    "redis_message_id",
)
#: Show a progress bar from this many messages on.
PROGRESS_FROM = 50

_REMOVE_DEAD = """
redis.call('zrem', KEYS[1], ARGV[1])
return redis.call('hdel', KEYS[2], ARGV[1])
"""


def fresh_copy(message: Message[Any]) -> Message[Any]:
    """A dead message ready to run again: retry state dropped, marked as requeued."""
    options = {k: v for k, v in message.options.items() if k not in RESET_OPTIONS}
    options[message_options.REQUEUED_AT] = time.time()
    return message.copy(options=options)


class Progress:
    """A one-line progress bar on stderr, shown only for many items."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.done = total, label, 0
        self.shown = total >= PROGRESS_FROM

    def step(self) -> None:
        self.done += 1
        if self.shown and (self.done % 10 == 0 or self.done == self.total):
            filled = int(30 * self.done / self.total)
            bar = "#" * filled + "." * (30 - filled)
            sys.stderr.write(f"\r{self.label} [{bar}] {self.done}/{self.total}")
            if self.done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def _requeue_redis(broker: RedisBroker, queue: str, dry_run: bool) -> int:
    client, ns = broker.client, broker.namespace
    ids_key, msgs_key = f"{ns}:{xq_name(queue)}", f"{ns}:{xq_name(queue)}.msgs"
    dead_ids = client.zrange(ids_key, 0, -1)
    if dry_run or not dead_ids:
        return len(dead_ids)
    remove = client.register_script(_REMOVE_DEAD)
    progress = Progress(len(dead_ids), queue)
    for redis_id in dead_ids:
        data = client.hget(msgs_key, redis_id)
        if data is not None:
            broker.enqueue(fresh_copy(Message.decode(data)))
        remove(keys=[ids_key, msgs_key], args=[redis_id])
        progress.step()
    return len(dead_ids)


def _requeue_rabbitmq(broker: Any, queue: str, dry_run: bool) -> int:
    _, _, dead = broker.get_queue_message_counts(queue)
    if dry_run or not dead:
        return int(dead)
    channel = broker.channel
    progress = Progress(int(dead), queue)
    moved = 0
    while True:
        method, _, body = channel.basic_get(xq_name(queue))
        if method is None:
            break
        broker.enqueue(fresh_copy(Message.decode(body)))
        channel.basic_ack(method.delivery_tag)
        moved += 1
        progress.step()
    return moved


def requeue_dead(broker: dramatiq.Broker, queues: list[str], *, dry_run: bool) -> dict[str, int]:
    """Move every dead-lettered message of ``queues`` back; return the counts per queue."""
    counts = {}
    for queue in queues:
        if isinstance(broker, RedisBroker):
            counts[queue] = _requeue_redis(broker, queue, dry_run)
        else:
            counts[queue] = _requeue_rabbitmq(broker, queue, dry_run)
    return counts
