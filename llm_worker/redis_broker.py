"""A Redis broker whose recovery of dead worker processes' messages can be run on demand."""

from __future__ import annotations

import threading
from typing import Any

import redis
from dramatiq.brokers.redis import RedisBroker

from .settings import BrokerSettings


class RecoveringRedisBroker(RedisBroker):
    """Dramatiq's :class:`RedisBroker` plus :meth:`recover_dead_workers`.

    Dramatiq moves the fetched but unacknowledged messages of a dead worker
    process (no heartbeat for ``heartbeat_timeout`` ms) back to their queue only
    during "maintenance", which runs by chance (``maintenance_chance`` per
    million commands) and for the one queue the command was about. On a quiet
    queue that can take many minutes; :meth:`recover_dead_workers` runs it at
    once, so a caller on a timer bounds the wait.
    """

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        self._forced_maintenance = threading.local()

    @classmethod
    def from_settings(
        cls, config: BrokerSettings, *, middleware: list[Any] | None = None
    ) -> RecoveringRedisBroker:
        """A broker on ``config``'s URL with its heartbeat timeout and maintenance
        chance; ``middleware`` ``None`` means Dramatiq's default stack."""
        return cls(
            url=config.effective_broker_url,
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
        self.client.connection_pool = redis.BlockingConnectionPool(
            connection_class=old.connection_class,
            max_connections=max_connections,
            timeout=wait_seconds,
            **old.connection_kwargs,
        )
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
