"""The fields one call adds to an hour's usage hash, and the hours a period covers."""

from __future__ import annotations

import calendar

import pytest

from llm_worker.fleet.usage_counters import (
    CallUsage,
    UsageSummary,
    hour_of,
    hour_start,
    hours_between,
    increments,
)

pytestmark = pytest.mark.unit

T = calendar.timegm((2025, 1, 31, 14, 20, 0))  # 2025-01-31 14:20 UTC


def test_hours_are_whole_utc_hours_from_the_one_holding_the_start():
    assert hour_of(T) == "2025013114"
    assert hour_start("2025013114") == T - 20 * 60
    assert hours_between(T - 30 * 60, T) == ["2025013113", "2025013114"]
    assert hours_between(T - 10 * 60, T) == ["2025013114"]
    assert len(hours_between(T - 24 * 3600, T)) == 25


def test_a_priced_call_adds_tokens_and_cost_under_each_dimension():
    added = increments(CallUsage("42", "intent_classify", "m:1", 18, 120))

    assert added["total:all:calls"] == 1
    assert added["user:42:tokens"] == 18
    assert added["job_type:intent_classify:cost"] == 120
    assert added["model:m%3A1:cost"] == 120  # an id is one segment
    assert not any(name.endswith("unpriced_tokens") for name in added)


def test_an_unpriced_call_adds_its_tokens_as_unpriced_and_no_cost():
    added = increments(CallUsage("-", "review_chunk", "m", 18, None))

    assert added["user:-:unpriced_tokens"] == 18
    assert not any(name.endswith(":cost") for name in added)


def test_a_summary_decodes_ids_and_ignores_unknown_fields():
    summary = UsageSummary(hours=["2025013114"])
    fields = {**increments(CallUsage("a:b%", "t", "m:1", 5, 3)), "odd": 1, "user:x:other": 2}

    summary.add_hour("2025013114", {k.encode(): str(v).encode() for k, v in fields.items()})

    assert summary.found == ["2025013114"]
    assert summary.by["user"]["a:b%"].cost == 3
    assert summary.by["model"]["m:1"].tokens == 5
    assert (summary.total.calls, summary.total.tokens, summary.total.cost) == (1, 5, 3)
