"""A Redis broker that never acknowledges a message it has not replaced, and whose
recovery of dead worker processes' messages can be run on demand."""

from __future__ import annotations

import threading
from typing import Any

import redis
from dramatiq.brokers.redis import RedisBroker
from redis.sentinel import SentinelConnectionPool

from llm_worker.broker.fail_safe import FailSafeHooks
from llm_worker.broker.redis_consumer import HeldMessages, SafeRedisConsumer, delivery_of
from llm_worker.broker.redis_layout import RedisLayout
from llm_worker.redis_pools import BlockingSentinelConnectionPool, connection_pool
from llm_worker.settings import BrokerSettings


class RecoveringRedisBroker(FailSafeHooks, RedisBroker):
    """Dramatiq's :class:`RedisBroker`, failing safe, plus :meth:`recover_dead_workers`.

    **Fail safe.** A middleware hook that fails while a message is processed
    (typically a write that replaces the message: a retry's or a hold's
    re-enqueue, a report stored in the outbox, while Redis is away) does not
    let the message be acknowledged or dead-lettered: it goes back on its
    queue for redelivery once Redis answers, as if its worker had died.
    Dramatiq itself logs and ignores such failures, so the message was acked
    while nothing replaced it.  A failing ``before_process_message`` hook also
    stops the message from running (Dramatiq would run the actor anyway); see
    :class:`~llm_worker.broker.fail_safe.FailSafeHooks`.  Its
    consumer (:class:`~llm_worker.broker.redis_consumer.SafeRedisConsumer`) moves
    unparseable messages aside and requeues messages a restarted consumer
    dropped.

    **Recovery.** Dramatiq moves the fetched but unacknowledged messages of a dead worker
    process (no heartbeat for ``heartbeat_timeout`` ms) back to their queue only
    during "maintenance", which runs by chance (``maintenance_chance`` per
    million commands) and for the one queue the command was about. On a quiet
    queue that can take many minutes; :meth:`recover_dead_workers` runs it at
    once, so a caller on a timer bounds the wait.

    **Dramatiq internals it patches** (``dramatiq/brokers/redis.py``):

    - ``_should_do_maintenance``, private: Dramatiq draws maintenance at random
      (``random.randint(1, MAINTENANCE_SCALE) <= maintenance_chance``, never for ``ack``
      and ``nack``) and hands the draw to ``dispatch.lua``, whose maintenance requeues
      the acks of brokers whose heartbeat is ``heartbeat_timeout`` old for the queue of
      that one command only; :meth:`recover_dead_workers` forces the draw.
    - ``consumer_class`` and ``consume``: Dramatiq's ``consume`` builds its private
      ``_RedisConsumer``; these build
      :class:`~llm_worker.broker.redis_consumer.SafeRedisConsumer` instead.
    - ``client.connection_pool``: ``RedisBroker.__init__`` (given a ``url``), like
      :meth:`from_settings`, uses an unbounded ``redis.ConnectionPool``;
      :meth:`bound_pool` swaps in a bounded, blocking one.
    """

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        self._forced_maintenance = threading.local()
        #: Messages worker threads hold, and those to redeliver instead of acknowledging.
        self.held_messages = HeldMessages()

    @property
    def layout(self) -> RedisLayout:
        """Where this broker keeps its messages in Redis: its keys under its namespace,
        and reads of them (:class:`~llm_worker.broker.redis_layout.RedisLayout`)."""
        return RedisLayout.of(self)

    @property
    def consumer_class(self) -> type[SafeRedisConsumer]:
        """This broker's consumer."""
        return SafeRedisConsumer

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> SafeRedisConsumer:
        """A :class:`~llm_worker.broker.redis_consumer.SafeRedisConsumer` of ``queue_name``."""
        return SafeRedisConsumer(self, queue_name, prefetch, timeout)

    def redeliver(self, message: Any) -> None:
        """Put ``message`` back on its queue when its worker is done, instead of
        acknowledging or dead-lettering it."""
        delivery = delivery_of(message)
        if delivery is not None:
            self.held_messages.redeliver(delivery)

    @classmethod
    def from_settings(
        cls, config: BrokerSettings, *, middleware: list[Any] | None = None
    ) -> RecoveringRedisBroker:
        """A broker on ``config``'s URL with its heartbeat timeout and maintenance
        chance; ``middleware`` ``None`` means Dramatiq's default stack."""
        pool = connection_pool(
            config.effective_broker_url, socket_options=config.redis_socket_options
        )
        return cls(
            connection_pool=pool,
            middleware=middleware,
            heartbeat_timeout=int(config.broker_heartbeat_timeout_seconds * 1000),
            maintenance_chance=config.broker_maintenance_chance,
        )

    def bound_pool(self, max_connections: int, *, wait_seconds: float = 20.0) -> None:
        """Replace the client's unbounded connection pool with one of at most
        ``max_connections``, where a command waits up to ``wait_seconds`` for a free
        connection. Call it before the worker's consumers start."""
        old = self.client.connection_pool
        if isinstance(old, redis.BlockingConnectionPool) and old.max_connections == max_connections:
            return
        bound = {"max_connections": max_connections, "timeout": wait_seconds}
        new: redis.ConnectionPool
        if isinstance(old, SentinelConnectionPool):
            kwargs = {k: v for k, v in old.connection_kwargs.items() if k != "connection_pool"}
            new = BlockingSentinelConnectionPool(
                old.service_name,
                old.sentinel_manager,
                connection_class=old.connection_class,
                **bound,
                **kwargs,
            )
        else:
            new = redis.BlockingConnectionPool(
                connection_class=old.connection_class, **bound, **old.connection_kwargs
            )
        self.client.connection_pool = new
        old.disconnect()

    def _should_do_maintenance(self, command: str) -> int:
        if getattr(self._forced_maintenance, "active", False):
            return 1
        return int(super()._should_do_maintenance(command))

    def recover_dead_workers(self, queue_name: str) -> None:
        """Requeue the messages of ``queue_name`` (a queue or a delay queue) held by
        dead worker processes, and drop its dead letters past their TTL, now.

        One Redis round trip (Dramatiq's dispatch script with maintenance on).
        """
        self._forced_maintenance.active = True
        try:
            self.do_qsize(queue_name)
        finally:
            self._forced_maintenance.active = False
