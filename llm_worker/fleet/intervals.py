"""Time intervals kept in a Redis sorted set: members ``"{began}:{ended}"`` scored by
their end (outages, 429 cooldowns), and how much of a span they cover."""

from __future__ import annotations

import redis

#: ``(began, ended)``, seconds since the epoch.
Interval = tuple[float, float]


def intervals_ending_after(client: redis.Redis, key: str, start: float) -> list[Interval]:
    """The intervals in the sorted set ``key`` that end at or after ``start``."""
    intervals: list[Interval] = []
    for member in client.zrangebyscore(key, start, "+inf"):
        began, ended = member.decode().split(":")
        intervals.append((float(began), float(ended)))
    return intervals


def covered_seconds(intervals: list[Interval], start: float, end: float) -> float:
    """Seconds of ``[start, end]`` covered by at least one of ``intervals`` (overlaps
    counted once)."""
    total, reached = 0.0, start
    for began, ended in sorted(intervals):
        began, ended = max(began, reached), min(ended, end)
        if ended > began:
            total += ended - began
            reached = ended
    return total
