"""The fleet's usage counters: tokens and cost of the LLM calls, per UTC hour, by user,
job type and model, read by ``llm-worker usage``.

One hash per hour (:func:`~llm_worker.keys.usage_hour`), its fields
``{dimension}:{id}:{measure}``: the dimension ``user``, ``job_type``, ``model`` or
``total`` (id ``all``), the id written as one key segment
(:func:`~llm_worker.keys.segment`), the measure one of :data:`MEASURES`.  Each
successful call adds to one hash in one round trip (``HINCRBY`` per field and one
``EXPIREAT``); each hash expires ``USAGE_RETENTION_DAYS`` after its hour ends.

A call whose cost is unknown (its model has no price, or no price table is set) adds
its tokens to ``unpriced_tokens`` and nothing to ``cost``: unknown is never counted as
free.
"""

from __future__ import annotations

import calendar
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import redis

from llm_worker import keys

logger = logging.getLogger(__name__)

#: The ways the counters are split, each a field prefix.
DIMENSIONS = ("user", "job_type", "model")
#: The id of the one entry of the ``total`` dimension.
TOTAL = ("total", "all")
#: What each field counts: calls, tokens (prompt and completion), the cost of the priced
#: calls in micro-dollars, and the tokens of the calls whose cost is unknown.
MEASURES = ("calls", "tokens", "cost", "unpriced_tokens")
#: The user of the calls that serve no user (a code review).
NO_USER = "-"
#: Seconds in one bucket.
HOUR_SECONDS = 3600
#: How an hour is written in its key: ``YYYYMMDDHH``, UTC.
HOUR_FORMAT = "%Y%m%d%H"


def hour_of(seconds: float) -> str:
    """The hour bucket (``YYYYMMDDHH``, UTC) holding the instant ``seconds`` (since the epoch)."""
    return time.strftime(HOUR_FORMAT, time.gmtime(seconds))


def hour_start(hour: str) -> int:
    """When the hour bucket ``hour`` (``YYYYMMDDHH``, UTC) starts, in seconds since the epoch.

    Raises:
      ValueError: for a string of another shape.
    """
    return calendar.timegm(time.strptime(hour, HOUR_FORMAT))


def hours_between(start: float, end: float) -> list[str]:
    """Every hour bucket from the one holding ``start`` to the one holding ``end``, oldest
    first (whole hours: the first begins at or before ``start``)."""
    first, last = int(start // HOUR_SECONDS), int(end // HOUR_SECONDS)
    return [hour_of(n * HOUR_SECONDS) for n in range(first, last + 1)]


@dataclass(frozen=True)
class CallUsage:
    """What one successful LLM call used, as the counters split it.

    Attributes:
      user: the user id the job is for, :data:`NO_USER` for none.
      job_type: the actor's name.
      model: the model asked (the fallback's name when the fallback served).
      tokens: prompt and completion tokens.
      cost_micro_usd: the call's cost, ``None`` when unknown.
    """

    user: str
    job_type: str
    model: str
    tokens: int
    cost_micro_usd: int | None


def _field(dimension: str, name: str, measure: str) -> str:
    return f"{dimension}:{keys.segment(name)}:{measure}"


def increments(call: CallUsage) -> dict[str, int]:
    """The fields one call adds to, and by how much (zeros left out)."""
    measures = {
        "calls": 1,
        "tokens": call.tokens,
        "cost": call.cost_micro_usd or 0,
        "unpriced_tokens": call.tokens if call.cost_micro_usd is None else 0,
    }
    entries = (TOTAL, ("user", call.user), ("job_type", call.job_type), ("model", call.model))
    return {
        _field(dimension, name, measure): amount
        for dimension, name in entries
        for measure, amount in measures.items()
        if amount
    }


@dataclass
class Counts:
    """The measures of one entry (a user, a job type, a model, or the total)."""

    calls: int = 0
    tokens: int = 0
    cost: int = 0
    unpriced_tokens: int = 0

    def add(self, measure: str, amount: int) -> None:
        """Add ``amount`` to ``measure`` (one of :data:`MEASURES`)."""
        setattr(self, measure, getattr(self, measure) + amount)


@dataclass
class UsageSummary:
    """The counters of some hours, summed.

    Attributes:
      hours: the hour buckets read (``YYYYMMDDHH``, UTC), oldest first.
      found: those of them that held any calls.
      total: every call of those hours.
      by: per dimension (:data:`DIMENSIONS`), per id, its counts.
    """

    hours: list[str]
    found: list[str] = field(default_factory=list)
    total: Counts = field(default_factory=Counts)
    by: dict[str, dict[str, Counts]] = field(
        default_factory=lambda: {dimension: {} for dimension in DIMENSIONS}
    )

    def add_hour(self, hour: str, fields: Mapping[bytes | str, bytes | str]) -> None:
        """Sum one hour's hash into this summary (unknown fields are ignored)."""
        if fields and hour not in self.found:
            self.found.append(hour)
        for raw_field, raw_value in fields.items():
            name = raw_field.decode() if isinstance(raw_field, bytes) else raw_field
            parts = name.split(":")
            if len(parts) != 3 or parts[2] not in MEASURES:
                continue
            dimension, segment, measure = parts
            amount = int(raw_value)
            if (dimension, segment) == TOTAL:
                self.total.add(measure, amount)
            elif dimension in self.by:
                self.by[dimension].setdefault(unquote(segment), Counts()).add(measure, amount)


class UsageCounters:
    """The hourly usage hashes in Redis.

    Parameters:
      client: the Redis client.
      prefix: ``KEY_PREFIX``.
      retention_seconds: how long a hash is kept after its hour ends
        (``USAGE_RETENTION_DAYS``).
    """

    def __init__(self, client: redis.Redis, prefix: str, *, retention_seconds: int) -> None:
        self._redis = client
        self._prefix = prefix
        self._retention = retention_seconds

    def record(self, call: CallUsage, *, now: float | None = None) -> None:
        """Add one call to the hash of the hour of ``now`` (default: the present), in one
        round trip.  A Redis failure is logged and swallowed: the call already happened,
        and failing its job would only make it call the model again."""
        now = time.time() if now is None else now
        hour = hour_of(now)
        key = keys.usage_hour(self._prefix, hour)
        pipe = self._redis.pipeline(transaction=False)
        for name, amount in increments(call).items():
            pipe.hincrby(key, name, amount)
        pipe.expireat(key, hour_start(hour) + HOUR_SECONDS + self._retention)
        try:
            pipe.execute()
        except redis.RedisError as exc:
            logger.warning("usage of an LLM call not counted (%s): %s", call.job_type, exc)

    def read(self, hours: Iterable[str]) -> UsageSummary:
        """The counters of ``hours`` (``YYYYMMDDHH``, UTC) summed, in one round trip."""
        summary = UsageSummary(hours=list(hours))
        pipe = self._redis.pipeline(transaction=False)
        for hour in summary.hours:
            pipe.hgetall(keys.usage_hour(self._prefix, hour))
        results: list[Any] = pipe.execute() if summary.hours else []
        for hour, fields in zip(summary.hours, results, strict=True):
            summary.add_hour(hour, fields)
        return summary
