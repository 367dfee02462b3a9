"""``llm-worker usage``: who and what used the LLM, and what it cost, over the last hours.

It reads the fleet's hourly usage counters (:mod:`llm_worker.fleet.usage_counters`) of
every hour bucket that overlaps the period asked (``--since 24h``) and prints the top
users, job types and models by cost and by tokens, and the totals.  Buckets are whole
UTC hours: the first begins up to 59 minutes before the period, and the last is the
hour under way; the output says which hours were summed.
"""

from __future__ import annotations

import json
import re
import time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from llm_worker.errors import CommandError
from llm_worker.fleet.usage_counters import (
    DIMENSIONS,
    HOUR_SECONDS,
    Counts,
    UsageSummary,
    hour_start,
    hours_between,
)
from llm_worker.llm.prices import MICRO_USD_PER_USD
from llm_worker.text import plural

#: Seconds in each unit ``--since`` accepts.
UNITS = {"m": 60, "h": 3600, "d": 86_400}
#: Longest period ``--since`` accepts, in days.
MAX_SINCE_DAYS = 3660
#: How each dimension is titled.
TITLES = {"user": "users", "job_type": "job types", "model": "models"}


def parse_since(text: str) -> int:
    """The period of ``--since`` (``30m``, ``24h``, ``7d``) in seconds.

    Raises:
      CommandError: for anything else, a zero period, or one over :data:`MAX_SINCE_DAYS`.
    """
    found = re.fullmatch(r"\s*(\d{1,7})\s*([mhd])\s*", text.lower())
    seconds = int(found[1]) * UNITS[found[2]] if found else 0
    if not 0 < seconds <= MAX_SINCE_DAYS * 86_400:
        raise CommandError(
            f"--since {text!r}: give a number of minutes, hours or days, as 30m, 24h or 7d"
        )
    return seconds


def usd(micro_usd: int, places: int = 2) -> str:
    """``micro_usd`` as dollars rounded half up to ``places`` decimals: ``$1.23``."""
    dollars = Decimal(micro_usd) / MICRO_USD_PER_USD
    return f"${dollars.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):,}"


def _when(hour: str, end: bool = False) -> str:
    start = hour_start(hour) + (HOUR_SECONDS - 60 if end else 0)
    return time.strftime("%Y-%m-%d %H:%M" if not end else "%H:59", time.gmtime(start))


def hours_line(summary: UsageSummary, since: str) -> str:
    """Which hour buckets were summed, and why they may reach before ``--since``."""
    first, last = summary.hours[0], summary.hours[-1]
    span = f"{_when(first)} to {time.strftime('%Y-%m-%d', time.gmtime(hour_start(last)))} "
    return (
        f"hours summed: {span}{_when(last, end=True)} UTC "
        f"({plural(len(summary.hours), 'hour bucket')}, {len(summary.found)} with calls): "
        "whole hours, so the first may start up "
        f"to 59 minutes before --since {since}, and the last is the hour under way"
    )


def top(entries: dict[str, Counts], key: str, count: int) -> list[tuple[str, Counts]]:
    """The ``count`` entries with the most ``key`` (``cost`` or ``tokens``), ties broken by
    the other measure, then by name."""
    other = "tokens" if key == "cost" else "cost"
    ranked = sorted(
        entries.items(),
        key=lambda item: (-getattr(item[1], key), -getattr(item[1], other), item[0]),
    )
    return ranked[:count]


def cost_cell(counts: Counts) -> str:
    """The cost of an entry as shown: dollars to the cent, ``unknown`` when none of its
    tokens was priced."""
    if counts.tokens and counts.unpriced_tokens == counts.tokens:
        return "unknown"
    return usd(counts.cost)


def _table(title: str, rows: list[tuple[str, Counts]]) -> list[str]:
    lines = [f"{title:<32} {'calls':>8} {'tokens':>14} {'cost':>12} {'unpriced tokens':>16}"]
    for name, counts in rows:
        shown = name if len(name) <= 30 else name[:27] + "..."
        lines.append(
            f"  {shown:<30} {counts.calls:>8,} {counts.tokens:>14,} {cost_cell(counts):>12} "
            f"{counts.unpriced_tokens:>16,}"
        )
    return lines


def render(summary: UsageSummary, *, since: str, count: int, retention_days: int) -> str:
    """The text report: the hours summed, the totals, then per dimension the top
    ``count`` by cost and by tokens."""
    total = summary.total
    lines = [
        hours_line(summary, since),
        f"total: {total.calls:,} calls, {total.tokens:,} tokens, {usd(total.cost)} "
        f"(exactly {usd(total.cost, 6)}); unpriced: {total.unpriced_tokens:,} tokens",
    ]
    if total.unpriced_tokens:
        lines.append(
            "  unpriced tokens have no known cost: their model has no entry in LLM_PRICES_FILE, "
            "or it was unset; the cost above leaves them out"
        )
    if len(summary.hours) * HOUR_SECONDS > retention_days * 86_400:
        lines.append(f"  hours older than USAGE_RETENTION_DAYS ({retention_days}) have expired")
    if not total.calls:
        lines.append("no LLM calls were counted in those hours")
        return "\n".join(lines)
    for dimension in DIMENSIONS:
        entries = summary.by[dimension]
        title = TITLES[dimension]
        lines.append("")
        lines.extend(_table(f"top {title} by cost", top(entries, "cost", count)))
        lines.extend(_table(f"top {title} by tokens", top(entries, "tokens", count)))
    return "\n".join(lines)


def _counts(counts: Counts) -> dict[str, Any]:
    return {
        "calls": counts.calls,
        "tokens": counts.tokens,
        "cost_micro_usd": counts.cost,
        "cost_usd": round(counts.cost / MICRO_USD_PER_USD, 6),
        "unpriced_tokens": counts.unpriced_tokens,
    }


def to_json(summary: UsageSummary, *, since: str, count: int) -> str:
    """The report as JSON: the hours summed (``YYYYMMDDHH``, UTC), the totals, and per
    dimension the top ``count`` by cost and by tokens (costs in micro-dollars and in
    dollars)."""
    report: dict[str, Any] = {
        "since": since,
        "hours": summary.hours,
        "hours_with_calls": summary.found,
        "from": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(hour_start(summary.hours[0]))),
        "to": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(hour_start(summary.hours[-1]) + HOUR_SECONDS)
        ),
        "total": _counts(summary.total),
    }
    for dimension in DIMENSIONS:
        entries = summary.by[dimension]
        report[dimension] = {
            f"by_{key}": [{"id": name, **_counts(c)} for name, c in top(entries, key, count)]
            for key in ("cost", "tokens")
        }
    return json.dumps(report, indent=2)


def period_hours(since_seconds: int, now: float | None = None) -> list[str]:
    """The hour buckets (``YYYYMMDDHH``, UTC) overlapping the last ``since_seconds``."""
    now = time.time() if now is None else now
    return hours_between(now - since_seconds, now)
