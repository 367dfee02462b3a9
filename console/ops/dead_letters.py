"""``llm-worker requeue-dead``: move dead-lettered messages back to their queues."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import xq_name

from llm_worker.broker.redis_layout import RedisLayout
from llm_worker.jobs import retry
from llm_worker.lua import lua_script
from llm_worker.services import Services

#: Show a progress bar from this many messages on.
PROGRESS_FROM = 50

_REMOVE_DEAD = lua_script(__name__, "dead_letters_remove_dead.lua")


def fresh_copy(message: Message[Any]) -> Message[Any]:
    """A dead message ready to run again: retry state dropped, marked as requeued.

    It skips the send-time check (a job dead-lettered as invalid would be
    refused there and never run again): the worker checks it at pick-up, so
    it either runs or ends again with a new state in Core.
    """
    return retry.requeued_message(message)


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


@dataclass
class QueueRequeue:
    """What requeueing one queue's dead letters did."""

    requeued: int = 0


class Requeuer:
    """Puts dead jobs back as fresh attempts, their earlier end forgotten.

    Parameters:
      broker: the actors' broker.
      svc: the process's services (settings, report outbox).
    """

    def __init__(self, broker: dramatiq.Broker, svc: Services) -> None:
        self.broker = broker
        self.svc = svc

    def requeue(self, message: Message[Any]) -> None:
        """Enqueue a fresh copy of a dead message, whatever it was dead-lettered for.

        The message keeps its id, so a valid LLM result stored by its last
        attempt is reused; a failure report of it not yet delivered is dropped,
        so Core never gets the old state after the new one.  A job with an
        invalid payload runs its checks again at pick-up: it runs if they now
        pass (a raised ``JOB_MAX_PAYLOAD_BYTES``), else fails again and Core
        gets that new state.
        """
        self.svc.outbox.reopen(message.message_id)
        self.broker.enqueue(fresh_copy(message))

    def requeue_redis(self, queue: str, dry_run: bool) -> QueueRequeue:
        """Requeue a Redis queue's dead letters."""
        assert isinstance(self.broker, RedisBroker)
        layout = RedisLayout.of(self.broker)
        client, dead = layout.client, layout.dead_letter_queue(queue)
        ids_key, msgs_key = layout.ids_key(dead), layout.messages_key(dead)
        dead_ids = layout.dead_letter_ids(queue)
        result = QueueRequeue()
        if dry_run or not dead_ids:
            result.requeued = len(dead_ids)
            return result
        remove = client.register_script(_REMOVE_DEAD)
        progress = Progress(len(dead_ids), queue)
        for redis_id in dead_ids:
            data = client.hget(msgs_key, redis_id)
            if data is not None:
                self.requeue(Message.decode(data))
            result.requeued += 1
            remove(keys=[ids_key, msgs_key], args=[redis_id])
            progress.step()
        return result

    def requeue_rabbitmq(self, queue: str, dry_run: bool) -> QueueRequeue:
        """Requeue a RabbitMQ queue's dead letters."""
        broker: Any = self.broker
        _, _, dead = broker.get_queue_message_counts(queue)
        result = QueueRequeue()
        if dry_run or not dead:
            result.requeued = int(dead)
            return result
        channel = broker.channel
        progress = Progress(int(dead), queue)
        while True:
            method, _, body = channel.basic_get(xq_name(queue))
            if method is None:
                break
            self.requeue(Message.decode(body))
            channel.basic_ack(method.delivery_tag)
            result.requeued += 1
            progress.step()
        return result


def requeue_dead(
    broker: dramatiq.Broker, svc: Services, queues: list[str], *, dry_run: bool
) -> dict[str, QueueRequeue]:
    """Move every dead-lettered message of ``queues`` back; return what happened per queue."""
    requeuer = Requeuer(broker, svc)
    counts = {}
    for queue in queues:
        if isinstance(broker, RedisBroker):
            counts[queue] = requeuer.requeue_redis(queue, dry_run)
        else:
            counts[queue] = requeuer.requeue_rabbitmq(queue, dry_run)
    return counts
