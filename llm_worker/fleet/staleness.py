"""How long a job waited for an LLM that could not take it: time that never makes it stale."""

from __future__ import annotations

import time

from llm_worker.fleet.breaker import BreakerStore
from llm_worker.fleet.capacity import CapacityStore
from llm_worker.fleet.intervals import covered_seconds


def unavailable_seconds(
    breaker: BreakerStore, capacity: CapacityStore, start: float, *, now: float | None = None
) -> float:
    """Seconds between ``start`` and ``now`` during which the LLM could not take jobs:
    its circuit breaker was open (an outage) or the fleet waited out a 429's cooldown.
    Overlaps count once."""
    now = time.time() if now is None else now
    intervals = breaker.outage_intervals(start, now=now)
    intervals += capacity.cooldown_intervals(start)
    return covered_seconds(intervals, start, now)
