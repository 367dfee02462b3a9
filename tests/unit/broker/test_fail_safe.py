"""How a broker that fails safe paces a message whose hooks keep failing."""

from __future__ import annotations

import pytest

from llm_worker.broker.fail_safe import (
    FIRST_PAUSE_SECONDS,
    LOG_INTERVAL_SECONDS,
    MAX_PAUSE_SECONDS,
    REMEMBERED_MESSAGES,
    HookFailures,
)

pytestmark = pytest.mark.unit


def test_the_pause_doubles_for_each_failure_in_a_row_up_to_its_cap():
    failures = HookFailures()
    pauses = [failures.failed("m", now=float(n))[0] for n in range(12)]

    assert pauses[:4] == [FIRST_PAUSE_SECONDS * 2**n for n in range(4)]
    assert pauses[-1] == MAX_PAUSE_SECONDS
    assert pauses == sorted(pauses)


def test_a_message_is_logged_in_full_once_per_interval():
    failures = HookFailures()
    logged = [failures.failed("m", now=t)[1] for t in (0.0, 1.0, 30.0, LOG_INTERVAL_SECONDS)]
    assert logged == [True, False, False, True]
    assert failures.failed("other", now=1.0)[1] is True  # each message its own interval


def test_success_starts_the_next_failures_afresh():
    failures = HookFailures()
    for n in range(5):
        failures.failed("m", now=float(n))
    failures.succeeded("m")
    assert failures.failed("m", now=100.0)[0] == FIRST_PAUSE_SECONDS


def test_the_memory_of_failures_is_bounded():
    failures = HookFailures()
    for n in range(REMEMBERED_MESSAGES + 10):
        failures.failed(f"m{n}", now=0.0)
    assert len(failures._seen) == REMEMBERED_MESSAGES
    assert failures.failed("m0", now=0.0)[0] == FIRST_PAUSE_SECONDS  # the oldest forgotten


def test_a_traceback_is_logged_once_per_interval_for_the_whole_process():
    failures = HookFailures()
    traced = [failures.trace_due(now=t) for t in (0.0, 1.0, 30.0, LOG_INTERVAL_SECONDS)]
    assert traced == [True, False, False, True]
