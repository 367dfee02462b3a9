"""How much of a span outages and cooldowns cover: the time that never makes a job stale."""

from __future__ import annotations

import pytest

from llm_worker.fleet.intervals import covered_seconds


@pytest.mark.parametrize(
    ("intervals", "expected"),
    [
        ([], 0.0),
        ([(10.0, 20.0)], 10.0),
        ([(0.0, 150.0)], 100.0),  # clipped to the span [0, 100]
        ([(10.0, 30.0), (20.0, 40.0)], 30.0),  # an overlap counts once
        ([(20.0, 40.0), (10.0, 30.0)], 30.0),  # in any order
        ([(10.0, 50.0), (20.0, 30.0)], 40.0),  # one inside another
        ([(10.0, 20.0), (30.0, 40.0)], 20.0),
        ([(-50.0, 5.0), (95.0, 500.0)], 10.0),  # before the start, after the end
        ([(120.0, 130.0)], 0.0),
    ],
)
def test_covered_seconds_counts_each_second_of_the_span_once(intervals, expected):
    assert covered_seconds(intervals, 0.0, 100.0) == expected
