"""``llm-worker requeue-dead``: move dead-lettered messages back to their queues.

The dashboard's Requeue button puts one dead letter back through the same
:class:`Requeuer` (:mod:`console.ops.dashboard_requeue`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
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
#: Longest reason quoted for a dead letter that cannot be read, in characters.
REASON_CHARS = 200

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
    """What requeueing one queue's dead letters did.

    Attributes:
      requeued: how many went back to their queue (with ``--dry-run``: how many would).
      failed: why each dead letter that could not be requeued was left where it is.
    """

    requeued: int = 0
    failed: list[str] = field(default_factory=list)


class RequeueFailed(Exception):
    """A dead letter was not requeued, or not wholly: the message says where it is now.

    It is never lost: it is still among its queue's dead letters, as it was, unless the
    message says it is back on its queue too.
    """


class Requeuer:
    """Puts dead jobs back as fresh attempts, their earlier end forgotten.

    Both ``llm-worker requeue-dead`` and the dashboard's Requeue button go through it.

    Parameters:
      broker: the actors' broker.
      svc: the process's services (settings, report outbox).
    """

    def __init__(self, broker: dramatiq.Broker, svc: Services) -> None:
        self.broker = broker
        self.svc = svc

    def requeue(self, message: Message[Any]) -> Message[Any]:
        """Enqueue a fresh copy of a dead message, whatever it was dead-lettered for;
        return the copy as enqueued.

        The message keeps its id, so a valid LLM result stored by its last
        attempt is reused; its finished marker and a failure report of it not
        yet delivered are dropped first, so the copy is not taken for a
        redelivery of a finished job and Core never gets the old state after
        the new one.  A job with an invalid payload runs its checks again at
        pick-up: it runs if they now pass (a raised ``JOB_MAX_PAYLOAD_BYTES``),
        else fails again and Core gets that new state.
        """
        self.svc.outbox.reopen(message.message_id)
        return self.broker.enqueue(fresh_copy(message))

    def requeue_redis_dead_letter(self, queue: str, redis_id: str | bytes) -> Message[Any] | None:
        """Requeue one dead letter of the Redis queue ``queue`` (not its ``.XQ``), known by
        its Redis id; return the copy enqueued, or ``None`` when there is no such dead
        letter (already requeued or deleted).

        The dead letter is removed only once its copy is enqueued: when it cannot be read,
        or the enqueue fails, it stays among the dead letters as it was (after a failed
        enqueue, with the job's finished marker and undelivered report already dropped,
        as the next requeue would).

        Raises:
          RequeueFailed: saying why, and where the message is.
        """
        assert isinstance(self.broker, RedisBroker)
        layout = RedisLayout.of(self.broker)
        dead = layout.dead_letter_queue(queue)
        ids_key, msgs_key = layout.ids_key(dead), layout.messages_key(dead)
        name = redis_id.decode(errors="replace") if isinstance(redis_id, bytes) else redis_id
        data = layout.client.hget(msgs_key, redis_id)
        if data is None:
            return None
        try:
            message = Message.decode(data)
        except Exception as exc:
            reason = exc.__cause__ or exc  # Message.decode wraps the encoder's error
            detail = str(reason)  # it may quote the whole payload
            if len(detail) > REASON_CHARS:
                detail = detail[:REASON_CHARS] + "..."
            raise RequeueFailed(
                f"dead letter {name} of {queue} not requeued: it cannot be read "
                f"({type(reason).__name__}: {detail}); it is still among the dead letters"
            ) from None
        try:
            copy = self.requeue(message)
        except Exception as exc:
            raise RequeueFailed(
                f"dead letter {name} of {queue} (message {message.message_id}) not requeued: "
                f"{type(exc).__name__}: {exc}; it is still among the dead letters"
            ) from exc
        try:
            layout.client.register_script(_REMOVE_DEAD)(keys=[ids_key, msgs_key], args=[redis_id])
        except Exception as exc:
            raise RequeueFailed(
                f"dead letter {name} of {queue} (message {message.message_id}) requeued, "
                f"but still among the dead letters ({type(exc).__name__}: {exc}): delete it "
                "there, or requeueing it again runs the job twice"
            ) from exc
        return copy

    def requeue_redis(self, queue: str, dry_run: bool) -> QueueRequeue:
        """Requeue a Redis queue's dead letters, one by one
        (:meth:`requeue_redis_dead_letter`); one that fails is left where it is, with
        the reason in the result, and the others go on."""
        assert isinstance(self.broker, RedisBroker)
        dead_ids = RedisLayout.of(self.broker).dead_letter_ids(queue)
        result = QueueRequeue()
        if dry_run or not dead_ids:
            result.requeued = len(dead_ids)
            return result
        progress = Progress(len(dead_ids), queue)
        for redis_id in dead_ids:
            try:
                if self.requeue_redis_dead_letter(queue, redis_id) is not None:
                    result.requeued += 1
            except RequeueFailed as exc:
                result.failed.append(str(exc))
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
