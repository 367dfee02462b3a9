"""The circuit breaker's shared state in Redis.

While the LLM is unavailable the breaker is *open*: the hash
``{p}:breaker`` exists with ``since``, ``last_error`` and ``next_probe_at``.
Closing it deletes the hash and records the outage in ``{p}:outages`` so the
stale check can discount time jobs spent held back.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

import redis

from llm_worker import keys
from llm_worker.fleet.intervals import Interval, intervals_ending_after
from llm_worker.lua import lua_script

_OPEN = lua_script(__name__, "breaker_open.lua")

_CLOSE = lua_script(__name__, "breaker_close.lua")


@dataclass(frozen=True)
class BreakerStatus:
    """What operators see of the breaker.  Times are seconds since the epoch."""

    state: Literal["closed", "open"]
    since: float | None = None
    last_error: str | None = None
    next_probe_at: float | None = None

    @property
    def is_open(self) -> bool:
        """Whether LLM jobs are held back."""
        return self.state == "open"

    def as_dict(self) -> dict[str, Any]:
        """The status as a JSON-ready dict."""
        return asdict(self)


class BreakerStore:
    """Reads and changes the breaker's state in Redis.

    Parameters:
      client: Redis at ``REDIS_URL``.
      prefix: ``KEY_PREFIX``.
      outage_retention: seconds past outages are kept (at least the expiry age).
      fallback: the fallback LLM's breaker (``{p}:breaker:fallback``), whose
        outages are not recorded: only the primary's hold jobs back.
    """

    def __init__(
        self, client: redis.Redis, prefix: str, *, outage_retention: float, fallback: bool = False
    ) -> None:
        self._redis = client
        self.fallback = fallback
        self._key = keys.breaker_fallback(prefix) if fallback else keys.breaker(prefix)
        lock = keys.breaker_fallback_probe_lock if fallback else keys.breaker_probe_lock
        self._probe_key = lock(prefix)
        self._outages_key = keys.outages(prefix)
        self._retention = outage_retention
        self._open_script = client.register_script(_OPEN)
        self._close_script = client.register_script(_CLOSE)

    def status(self) -> BreakerStatus:
        """The current state, read from Redis."""
        raw = {k.decode(): v.decode() for k, v in self._redis.hgetall(self._key).items()}
        if "since" not in raw:
            return BreakerStatus("closed")
        return BreakerStatus(
            "open",
            since=float(raw["since"]),
            last_error=raw.get("last_error"),
            next_probe_at=float(raw.get("next_probe_at", raw["since"])),
        )

    def open(self, error: str, *, next_probe_at: float, now: float | None = None) -> bool:
        """Open the breaker (or record a further error); ``True`` if it was closed.

        ``next_probe_at`` only ever moves later here, so a long ``Retry-After``
        is kept.
        """
        now = time.time() if now is None else now
        opened = self._open_script(keys=[self._key], args=[now, error[:1000], next_probe_at])
        return bool(opened)

    def probe_failed(self, error: str, *, next_probe_at: float) -> None:
        """Record a failed probe and when the next one is due."""
        self._redis.hset(
            self._key, mapping={"last_error": error[:1000], "next_probe_at": next_probe_at}
        )

    def close(self, *, now: float | None = None) -> float | None:
        """Close the breaker; return when the outage started, or ``None`` if it was closed."""
        now = time.time() if now is None else now
        if self.fallback:
            raw = self._redis.hget(self._key, "since")
            self._redis.delete(self._key)
            return float(raw) if raw else None
        since = self._close_script(
            keys=[self._key, self._outages_key], args=[now, now - self._retention]
        )
        return float(since) if since else None

    def claim_probe(self, interval: float) -> bool:
        """Become the one process that probes in this interval; ``False`` if another is."""
        return bool(self._redis.set(self._probe_key, "1", nx=True, px=max(1, int(interval * 1000))))

    def outage_intervals(self, start: float, *, now: float | None = None) -> list[Interval]:
        """The outages (``(began, ended)``) that ended after ``start``, the current one
        (if the breaker is open) ending ``now``."""
        now = time.time() if now is None else now
        intervals = intervals_ending_after(self._redis, self._outages_key, start)
        current = self.status()
        if current.since is not None:
            intervals.append((current.since, now))
        return intervals
