"""``llm-worker usage``'s period, money and report, from counters summed in memory."""

from __future__ import annotations

import calendar
import json

import pytest

from console.ops.usage import parse_since, period_hours, render, to_json, usd
from llm_worker.errors import CommandError
from llm_worker.fleet.usage_counters import CallUsage, UsageSummary, increments

pytestmark = pytest.mark.unit

T = calendar.timegm((2025, 1, 31, 14, 20, 0))


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("24h", 86_400), ("7d", 604_800)])
def test_since_takes_minutes_hours_or_days(text, seconds):
    assert parse_since(text) == seconds


@pytest.mark.parametrize("text", ["", "24", "0h", "1w", "-1d", "h", "99999999d"])
def test_any_other_since_is_refused(text):
    with pytest.raises(CommandError, match="30m, 24h or 7d"):
        parse_since(text)


def test_dollars_are_rounded_half_up_to_the_cent():
    assert usd(1_234_999) == "$1.23"
    assert usd(1_235_000) == "$1.24"
    assert usd(5_000) == "$0.01"
    assert usd(1_234_567_890) == "$1,234.57"
    assert usd(151, 6) == "$0.000151"


def summary_of(*calls: CallUsage) -> UsageSummary:
    summary = UsageSummary(hours=period_hours(1800, now=T))
    for call in calls:
        summary.add_hour("2025013114", increments(call))
    return summary


def test_the_report_says_which_hours_it_summed_and_ranks_by_cost_and_tokens():
    summary = summary_of(
        CallUsage("42", "intent_classify", "small", 1000, 10_000),
        CallUsage("7", "task_match", "big", 200, 2_000_000),
        CallUsage("-", "review_chunk", "local", 5000, None),
    )

    text = render(summary, since="30m", count=2, retention_days=35)

    lines = text.splitlines()
    assert lines[0].startswith("hours summed: 2025-01-31 13:00 to 2025-01-31 14:59 UTC")
    assert "2 hour buckets, 1 with calls" in lines[0] and "before --since 30m" in lines[0]
    assert lines[1] == (
        "total: 3 calls, 6,200 tokens, $2.01 (exactly $2.010000); unpriced: 5,000 tokens"
    )
    by_cost = lines[lines.index(next(x for x in lines if x.startswith("top users by cost"))) + 1]
    assert by_cost.split()[:1] == ["7"] and "$2.00" in by_cost
    by_tokens = next(x for x in lines if x.startswith("top users by tokens"))
    assert lines[lines.index(by_tokens) + 1].split()[0] == "-"
    assert "unknown" in lines[lines.index(by_tokens) + 1]
    assert len([x for x in lines if x.startswith("  ")]) == 1 + 6 * 2  # the note, 2 a list


def test_the_json_report_keeps_exact_micro_dollars():
    summary = summary_of(CallUsage("42", "intent_classify", "small", 18, 151))

    report = json.loads(to_json(summary, since="30m", count=10))

    assert report["hours"] == ["2025013113", "2025013114"]
    assert report["from"] == "2025-01-31T13:00:00Z" and report["to"] == "2025-01-31T15:00:00Z"
    assert report["total"]["cost_micro_usd"] == 151 and report["total"]["cost_usd"] == 0.000151
    assert report["user"]["by_cost"][0]["id"] == "42"


def test_no_calls_says_so():
    assert render(UsageSummary(hours=["2025013114"]), since="30m", count=3, retention_days=35)
