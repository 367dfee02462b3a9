"""The project's Redis broker seen through the test API of Dramatiq's ``StubBroker``.

Most of Dramatiq's actor and worker tests take the ``stub_broker`` fixture and use what
only ``dramatiq.brokers.stub.StubBroker`` has: ``queues[name]`` as a ``queue.Queue``
(``get``, ``put``, ``qsize``), ``dead_letters`` and ``dead_letters_by_queue``, and a
``join`` that re-raises the exception of a dead-lettered message (``fail_fast``, on by
default). :class:`StubViewRedisBroker` is
:class:`~llm_worker.broker.redis_broker.RecoveringRedisBroker`, messages, consumer,
acknowledgements, put-backs and all, with that API laid over it, so those tests run on
the project's Redis broker and a real Redis instead of in memory.
:class:`DramatiqStubViewRedisBroker` is the same view over Dramatiq's own ``RedisBroker``,
to tell a test that assumes the in-memory stub broker from one that finds a difference
of the project's broker.

The view changes nothing the broker does with a message:

- its consumer is the broker's own
  (:class:`~llm_worker.broker.redis_consumer.SafeRedisConsumer`), but for two things: it
  hands out each message as a ``_StubMessageProxy`` (Dramatiq's stub message proxy, which
  keeps the actor's exception after processing, so ``join`` can re-raise it) instead of
  a ``MessageProxy``, and it notes each message it dead-letters before it does;
- a message the broker puts back on its queue instead (a failed hook) is not a dead
  letter;
- ``dead_letters`` shows each dead letter's message as its sender built it, without the
  ``redis_message_id`` option the Redis broker adds to every message it enqueues;
- ``join`` is the Redis broker's (no message queued, delayed or fetched and
  unacknowledged), polled every 10 ms, and never waits forever: without a ``timeout`` it
  raises ``QueueJoinTimeout`` after :attr:`StubViewRedisBroker.join_timeout_ms`.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections import defaultdict
from typing import Any

from dramatiq import Consumer, Message, MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.brokers.stub import _StubMessageProxy
from dramatiq.errors import QueueNotFound

from llm_worker.broker.redis_broker import RecoveringRedisBroker
from llm_worker.broker.redis_consumer import SafeRedisConsumer, delivery_of
from llm_worker.broker.redis_layout import RedisLayout

#: How long :meth:`StubViewRedisBroker.join` waits when given no timeout, in ms.
DEFAULT_JOIN_TIMEOUT_MS = 30_000
#: How often ``join`` asks Redis for the queue's size, in ms.
JOIN_INTERVAL_MS = 10
#: The option the Redis broker adds to each message it enqueues.
REDIS_MESSAGE_ID = "redis_message_id"


class QueueView:
    """A Redis queue of the broker as the stub broker's ``queue.Queue``."""

    def __init__(self, broker: _StubView, queue_name: str) -> None:
        self.broker = broker
        self.queue_name = queue_name
        self._ids = broker.layout.ids_key(queue_name)
        self._payloads = broker.layout.messages_key(queue_name)

    def get(self, timeout: float | None = None) -> bytes:
        """Take the first message off the queue, unprocessed: its encoded payload.

        Raises:
          queue.Empty: when the queue stayed empty for ``timeout`` seconds (without one,
            as long as the broker's ``join`` waits).
        """
        wait = timeout if timeout is not None else self.broker.join_timeout_ms / 1000
        deadline = time.monotonic() + wait
        client = self.broker.client
        while True:
            redis_id = client.lpop(self._ids)
            if redis_id is not None:
                data = client.hget(self._payloads, redis_id)
                client.hdel(self._payloads, redis_id)
                if data is not None:
                    return bytes(data)
            elif time.monotonic() >= deadline:
                raise queue.Empty
            else:
                time.sleep(0.01)

    def put(self, data: bytes) -> None:
        """Put an encoded message at the end of the queue, with a Redis message id of its
        own, as the broker's ``enqueue`` does."""
        redis_id = str(uuid.uuid4())
        message = Message.decode(data).copy(options={REDIS_MESSAGE_ID: redis_id})
        self.broker.do_enqueue(self.queue_name, redis_id, message.encode())

    def qsize(self) -> int:
        """How many messages wait on the queue (not counting those fetched)."""
        return int(self.broker.client.llen(self._ids))


class QueueViews(set[str]):
    """The broker's declared queues (the set Dramatiq's Redis broker keeps), which also
    hands out a :class:`QueueView` of a declared queue or delay queue by name."""

    def __init__(self, broker: _StubView) -> None:
        super().__init__()
        self.broker = broker

    def __getitem__(self, queue_name: str) -> QueueView:
        if queue_name not in self and queue_name not in self.broker.delay_queues:
            raise KeyError(queue_name)
        return QueueView(self.broker, queue_name)


class _StubViewConsumer(Consumer):
    """What the stub view adds to a Redis consumer: it hands out stub message proxies
    and notes the messages it dead-letters."""

    broker: Any  # a _StubView; each Redis consumer class types it as its own broker
    queue_name: str

    def __next__(self) -> Any:
        message = super().__next__()
        if message is not None:
            message.__class__ = _StubMessageProxy  # same object: holds and marks stay on it
        return message

    def nack(self, message: Any) -> None:
        held = getattr(self.broker, "held_messages", None)
        if held is None or not held.must_redeliver(delivery_of(message)):
            self.broker.note_dead_letter(self.queue_name, message)
        super().nack(message)


class StubViewConsumer(_StubViewConsumer, SafeRedisConsumer):
    """The project's Redis consumer, seen through the stub view."""


class DramatiqStubViewConsumer(_StubViewConsumer, _RedisConsumer):
    """Dramatiq's own Redis consumer, seen through the stub view."""


class _StubView(RedisBroker):
    """The stub broker's test API over a Redis broker (see the module docstring)."""

    #: The consumer class :meth:`consume` builds (broker, queue, prefetch, timeout).
    consumer_type: type[Any]

    def __init__(self, *, fail_fast_default: bool = True, **options: Any) -> None:
        super().__init__(**options)
        self.queues: QueueViews = QueueViews(self)
        self.fail_fast_default = fail_fast_default
        #: How long ``join`` waits when given no timeout, in ms.
        self.join_timeout_ms = DEFAULT_JOIN_TIMEOUT_MS
        self._dead_lock = threading.Lock()
        #: The messages dead-lettered per queue, as the consumer held them.
        self.dead_letters_by_queue: defaultdict[str, list[MessageProxy]] = defaultdict(list)

    @property
    def layout(self) -> RedisLayout:
        """Where the broker keeps its messages in Redis."""
        return RedisLayout.of(self)

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Any:
        """The broker's Redis consumer of ``queue_name``, seen through the stub view."""
        return self.consumer_type(self, queue_name, prefetch, timeout)

    def note_dead_letter(self, queue_name: str, message: MessageProxy) -> None:
        """Note that ``message`` is being dead-lettered from ``queue_name`` (once, however
        often its consumer retries the dead-lettering)."""
        with self._dead_lock:
            letters = self.dead_letters_by_queue[queue_name]
            if not any(letter is message for letter in letters):
                letters.append(message)

    @property
    def dead_letters(self) -> list[MessageProxy]:
        """The dead-lettered messages of every queue, as their senders built them."""
        with self._dead_lock:
            held = [m for messages in self.dead_letters_by_queue.values() for m in messages]
        return [_as_sent(message) for message in held]

    def flush_all(self) -> None:
        """Drop every message of every declared queue, and forget the dead letters."""
        super().flush_all()
        with self._dead_lock:
            for letters in self.dead_letters_by_queue.values():
                letters.clear()

    def join(
        self,
        queue_name: str,
        *,
        timeout: int | None = None,
        fail_fast: bool | None = None,
        interval: int = JOIN_INTERVAL_MS,
    ) -> None:
        """Wait until no message of ``queue_name`` (or of its delay queue) is queued or
        unacknowledged; with ``fail_fast`` (default :attr:`fail_fast_default`) raise the
        exception of the first message dead-lettered from it.

        Raises:
          QueueNotFound: when the queue was never declared.
          QueueJoinTimeout: after ``timeout`` ms, or :attr:`join_timeout_ms` without one.
        """
        if queue_name not in self.queues:
            raise QueueNotFound(queue_name)
        wait = timeout if timeout is not None else self.join_timeout_ms
        super().join(queue_name, interval=interval, timeout=wait)
        if fail_fast if fail_fast is not None else self.fail_fast_default:
            with self._dead_lock:
                letters = list(self.dead_letters_by_queue[queue_name])
            for message in letters:
                raise (
                    message._exception or Exception("Message failed with unknown error")
                ) from None


class StubViewRedisBroker(_StubView, RecoveringRedisBroker):
    """:class:`~llm_worker.broker.redis_broker.RecoveringRedisBroker` with the test API
    of Dramatiq's ``StubBroker``."""

    consumer_type = StubViewConsumer


class DramatiqStubViewRedisBroker(_StubView):
    """Dramatiq's own ``RedisBroker`` with the test API of its ``StubBroker``: the
    baseline that tells a test's assumptions about the in-memory stub broker from a
    difference of the project's broker."""

    consumer_type = DramatiqStubViewConsumer


def _as_sent(message: MessageProxy) -> MessageProxy:
    """A stub proxy of ``message`` without the Redis broker's own message id."""
    sent = message._message
    options = {name: value for name, value in sent.options.items() if name != REDIS_MESSAGE_ID}
    view = _StubMessageProxy(Message(**{**sent.asdict(), "options": options}))
    view._exception = message._exception
    view.failed = message.failed
    return view
