"""A Redis consumer that loses nothing: unreadable messages moved aside, orphans requeued.

Dramatiq's Redis consumer fetches message ids into a per-process set
``{ns}:__acks__.{broker_id}.{queue}`` and their payloads into memory.  Two
things there can strand a message while its worker process lives on (and so
keeps its heartbeat, which is all Dramatiq's own recovery looks at):

- an unparseable payload raises inside the consumer, which restarts and
  drops the other payloads it had fetched;
- a lost connection (Redis stopping) restarts the consumer too, dropping its
  fetched payloads and, for a delay queue, the delayed messages it held;
- a delay queue's consumer thread whose moving of a due message to its queue
  fails (Redis stopping) closes its consumer, requeueing the delayed messages
  it held; Dramatiq's consumer let that requeue's connection error escape and
  kill the thread, so the delay queue's fetched messages stayed in its acks set.

This consumer moves an unparseable payload aside, to the hash
``{ns}:{queue}.unreadable`` (message id -> raw payload), logging its id, and
every new consumer (the first, and each after a restart) puts back on its
queue every id of its acks set that no worker thread holds.  A requeue that
meets a lost connection raises Dramatiq's ``ConnectionClosed``, which the
consumer thread survives: it restarts, and its next consumer puts the delayed
messages back.  A Redis that stops answering (``redis.TimeoutError``, with a
``socket_timeout`` in the broker's URL) counts as a lost connection everywhere
here: Dramatiq's consumer converted only ``ConnectionError``, so an ack that timed
out escaped its retry loop and left the message fetched, held by no one, for good.
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import TYPE_CHECKING, Any

import redis
from dramatiq.brokers.redis import _RedisConsumer
from dramatiq.errors import ConnectionClosed, DecodeError

from llm_worker.broker.redis_layout import RedisKeys
from llm_worker.lua import lua_script

if TYPE_CHECKING:
    from llm_worker.broker.redis_broker import RecoveringRedisBroker

logger = logging.getLogger("llm_worker.redis_consumer")

#: Redis errors that mean the connection is lost (refused, broken, or no answer within the
#: URL's ``socket_timeout``): the consumer raises Dramatiq's ``ConnectionClosed`` for them,
#: so an ack is retried until Redis answers and a fetch restarts the consumer.
CONNECTION_LOST = (redis.ConnectionError, redis.TimeoutError)

#: Requeue the ids of KEYS[1] (acks) not listed in ARGV onto KEYS[2] (queue) when
#: KEYS[3] (payloads) still has them; return how many.
_REQUEUE_ORPHANS = lua_script(__name__, "redis_consumer_requeue_orphans.lua")

#: Find the fetched id of KEYS[1] (acks) whose payload in KEYS[2] is ARGV[1], and move it
#: to KEYS[3] (unreadable); return the id, or false.
_MOVE_ASIDE = lua_script(__name__, "redis_consumer_move_aside.lua")

#: Move message KEYS-wise: drop id ARGV[1] from KEYS[1] (queue list) and KEYS[2]
#: (payloads) and keep its payload ARGV[2] in KEYS[3] (unreadable).
_SWEEP_ASIDE = lua_script(__name__, "redis_consumer_sweep_aside.lua")


def unreadable_key(namespace: str, queue_name: str) -> str:
    """``{ns}:{queue}.unreadable``: hash of the queue's (and its delay queue's) messages
    that could not be parsed, message id -> raw payload."""
    return RedisKeys(namespace).unreadable_key(queue_name)


def move_unreadable(client: redis.Redis, namespace: str, queue_name: str, redis_id: Any) -> None:
    """Move a queued message that cannot be parsed aside (for the sweeper)."""
    layout = RedisKeys(namespace)
    data = client.hget(layout.messages_key(queue_name), redis_id)
    if data is None:
        return
    client.eval(
        _SWEEP_ASIDE,
        3,
        layout.ids_key(queue_name),
        layout.messages_key(queue_name),
        layout.unreadable_key(queue_name),
        redis_id,
        data,
    )


#: The attribute of a fetched message (the ``MessageProxy`` a worker thread holds) that
#: names its delivery in :class:`HeldMessages`.
DELIVERY_ATTRIBUTE = "_llm_delivery"


def delivery_of(message: Any) -> int | None:
    """The delivery a fetched message is, or ``None`` (a message not fetched by this
    process's consumers, or from a delay queue)."""
    token = getattr(message, DELIVERY_ATTRIBUTE, None)
    return token if isinstance(token, int) else None


class HeldMessages:
    """The messages handed to worker threads and not yet acknowledged, per queue, each
    as one delivery.

    A message put back on its queue can be fetched again, by another thread, before the
    thread that put it back is done with it; the marks that say "put it back instead of
    acknowledging it" therefore belong to a delivery (a number given at each fetch), not
    to the message's id, so the first thread's late release cannot clear the second
    delivery's mark or hold and let it acknowledge a message it was to put back.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, dict[str, int]] = {}
        self._redeliver: set[int] = set()
        self._deliveries = itertools.count(1)

    def hold(self, queue_name: str, redis_id: str) -> int:
        """A worker thread got ``redis_id``: its new delivery."""
        with self._lock:
            delivery = next(self._deliveries)
            self._held.setdefault(queue_name, {})[redis_id] = delivery
            return delivery

    def release(self, queue_name: str, redis_id: str, delivery: int | None) -> None:
        """``delivery`` of ``redis_id`` was acknowledged, dead-lettered or requeued; a later
        delivery of the same message keeps its hold and its mark."""
        with self._lock:
            held = self._held.get(queue_name, {})
            if delivery is None or held.get(redis_id) == delivery:
                held.pop(redis_id, None)
            if delivery is not None:
                self._redeliver.discard(delivery)

    def held(self, queue_name: str) -> list[str]:
        """The ids of ``queue_name`` worker threads hold now."""
        with self._lock:
            return list(self._held.get(queue_name, ()))

    def redeliver(self, delivery: int) -> None:
        """Put ``delivery``'s message back on its queue when done instead of acknowledging it."""
        with self._lock:
            self._redeliver.add(delivery)

    def must_redeliver(self, delivery: int | None) -> bool:
        """Whether ``delivery``'s message goes back on its queue instead of being acknowledged."""
        with self._lock:
            return delivery is not None and delivery in self._redeliver


class SafeRedisConsumer(_RedisConsumer):
    """Dramatiq's Redis consumer that never strands a message (see the module docstring),
    and puts a message back on its queue, instead of acknowledging it, when the broker
    says a write that replaces it failed.

    Subclasses the private ``_RedisConsumer`` (``dramatiq/brokers/redis.py``) for what it
    does with errors, as ``ConsumerThread`` (``dramatiq/worker.py``) handles them:

    - ``__next__`` decodes each fetched payload with ``Message.decode``; its
      ``DecodeError`` reaches ``ConsumerThread.run``, which logs "Consumer encountered an
      unexpected error" and builds a new consumer, dropping the old one's
      ``message_cache`` while their ids stay in ``{ns}:__acks__.{broker_id}.{queue}``.
      ``run`` also replaces its ``delay_queue`` after a ``BrokerConnectionError``,
      dropping the delayed messages it held.  Dramatiq's only recovery of acks,
      ``dispatch.lua``'s maintenance, waits for the process's heartbeat to stop, so
      these stay stranded while the process lives; :meth:`__next__` requeues them.
    - ``ack`` and ``nack`` turn only ``redis.ConnectionError`` into ``ConnectionClosed``;
      a ``redis.TimeoutError`` escaped the retry loop of
      ``ConsumerThread.post_process_message`` (logged there as "Unhandled error during
      post_process_message"), leaving the message fetched and held by no one.
    - ``requeue`` lets a redis error out of ``ConsumerThread.close``, which catches only
      ``BrokerConnectionError``: the consumer thread died.
    - ``ack`` and ``nack`` have no way to hand a message back to its queue;
      ``_put_back`` uses the broker's ``do_requeue`` (``dispatch.lua``'s ``requeue``).
    """

    broker: RecoveringRedisBroker

    def __init__(self, broker: RecoveringRedisBroker, queue_name: str, prefetch: int, timeout: int):
        super().__init__(broker, queue_name, prefetch, timeout)
        self._orphans_checked = False
        self._layout = broker.layout
        self._acks_key = self._layout.acks_key(broker.broker_id, queue_name)
        self._queue_key = self._layout.ids_key(queue_name)
        self._msgs_key = self._layout.messages_key(queue_name)
        self._delay_queue = self._layout.is_delay_queue(queue_name)

    def _requeue_orphans(self) -> None:
        held = [] if self._delay_queue else self.broker.held_messages.held(self.queue_name)
        moved = self.broker.client.eval(
            _REQUEUE_ORPHANS, 3, self._acks_key, self._queue_key, self._msgs_key, *held
        )
        if moved:
            logger.warning(
                "put %d fetched but unprocessed messages back on %s", moved, self.queue_name
            )

    def _move_aside(self, data: Any) -> None:
        target = self._layout.unreadable_key(self.queue_name)
        redis_id = self.broker.client.eval(
            _MOVE_ASIDE, 3, self._acks_key, self._msgs_key, target, data
        )
        shown = redis_id.decode() if isinstance(redis_id, bytes) else redis_id
        logger.error(
            "unreadable message %s in %s moved aside to %s (%d bytes)",
            shown,
            self.queue_name,
            target,
            len(data) if isinstance(data, bytes | str) else 0,
        )

    def __next__(self) -> Any:
        try:
            if not self._orphans_checked:
                self._requeue_orphans()
                self._orphans_checked = True
            while True:
                try:
                    message = super().__next__()
                except DecodeError as exc:
                    self._move_aside(exc.data)
                    continue
                if message is not None and not self._delay_queue:
                    delivery = self.broker.held_messages.hold(
                        self.queue_name, message.options["redis_message_id"]
                    )
                    setattr(message, DELIVERY_ATTRIBUTE, delivery)
                return message
        except CONNECTION_LOST as exc:
            raise ConnectionClosed(exc) from None

    def ack(self, message: Any) -> None:
        redis_id, delivery = message.options["redis_message_id"], delivery_of(message)
        if self.broker.held_messages.must_redeliver(delivery):
            self._put_back(message, redis_id, delivery)
            return
        try:
            super().ack(message)
        except redis.TimeoutError as exc:  # Dramatiq's consumer converts only ConnectionError
            raise ConnectionClosed(exc) from None
        self.broker.held_messages.release(self.queue_name, redis_id, delivery)

    def nack(self, message: Any) -> None:
        redis_id, delivery = message.options["redis_message_id"], delivery_of(message)
        if self.broker.held_messages.must_redeliver(delivery):
            self._put_back(message, redis_id, delivery)
            return
        try:
            super().nack(message)
        except redis.TimeoutError as exc:
            raise ConnectionClosed(exc) from None
        self.broker.held_messages.release(self.queue_name, redis_id, delivery)

    def _put_back(self, message: Any, redis_id: str, delivery: int | None) -> None:
        # Released only once requeued: a put-back that meets a lost connection keeps its hold
        # and its mark, so Dramatiq's consumer thread, trying again, puts it back again
        # instead of acknowledging it away.  (A new delivery fetched between the requeue and
        # the release keeps its own hold: holds and marks are per delivery.)
        try:
            self.broker.do_requeue(self.queue_name, redis_id)
        except CONNECTION_LOST as exc:
            raise ConnectionClosed(exc) from None
        finally:
            self.queued_message_ids.discard(message.message_id)
        self.broker.held_messages.release(self.queue_name, redis_id, delivery)
        logger.warning(
            "message %s put back on %s for redelivery", message.message_id, self.queue_name
        )

    def requeue(self, messages: Any) -> None:
        # Dramatiq's consumer thread, closing after a lost connection, requeues the delayed
        # messages it held and ignores only BrokerConnectionError: a bare redis error here
        # killed the thread, stranding the delay queue's fetched messages for good.
        messages = list(messages)
        try:
            super().requeue(messages)
        except CONNECTION_LOST as exc:
            raise ConnectionClosed(exc) from None
        for message in messages:
            redis_id = message.options["redis_message_id"]
            self.broker.held_messages.release(self.queue_name, redis_id, delivery_of(message))
