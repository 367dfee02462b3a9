"""Leases a process holds in Redis, renewed together: one thread, one call per interval.

The fleet's LLM slots (:mod:`llm_worker.fleet.capacity`) and the jobs' leases
(:mod:`llm_worker.jobs.lease`) both expire unless their holder renews them, so that a
dead, frozen or cut-off process gives them back.  However many a process holds, it
renews them in one Redis call per interval, from one daemon thread started with the
first lease.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import redis

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=Hashable)


class HeldLeases(Generic[T]):
    """The leases of one kind this process holds, renewed by one thread.

    Parameters:
      renew: renews the leases it is given, in one Redis call.
      interval: seconds between two renewals (a third of the lease).
      name: the thread's name; ``what`` names the leases in a failed renewal's log line.
    """

    def __init__(
        self, renew: Callable[[list[T]], object], *, interval: float, name: str, what: str
    ) -> None:
        self._renew = renew
        self.interval = interval
        self._name = name
        self._what = what
        self._held: set[T] = set()
        self._lock = threading.Lock()
        self._renewer: threading.Thread | None = None

    def add(self, lease: T) -> None:
        """Hold ``lease``: renew it from now on (the thread starts with the first)."""
        with self._lock:
            self._held.add(lease)
            if self._renewer is None or not self._renewer.is_alive():
                self._renewer = threading.Thread(
                    target=self._renew_forever, name=self._name, daemon=True
                )
                self._renewer.start()

    def discard(self, lease: T) -> None:
        """No longer renew ``lease``."""
        with self._lock:
            self._held.discard(lease)

    def held(self) -> list[T]:
        """The leases held now."""
        with self._lock:
            return list(self._held)

    def _renew_forever(self) -> None:
        while True:
            time.sleep(self.interval)
            held = self.held()
            if not held:
                continue
            try:
                self._renew(held)
            except redis.RedisError as exc:  # those it misses expire: another holder may run
                logger.warning("could not renew %d %s: %r", len(held), self._what, exc)
