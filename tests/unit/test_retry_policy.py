"""The retry policy: the options a job keeps, what marks a requeue, what a requeue resets."""

from __future__ import annotations

import pytest

from llm_worker.jobs import retry
from llm_worker.llm.usage import USAGE_OPTION

pytestmark = pytest.mark.unit


def test_every_option_is_listed_once():
    names = [option.name for option in retry.OPTIONS]

    assert len(names) == len(set(names))
    assert {
        retry.HELD_SINCE,
        retry.SERVER_ERRORS,
        retry.CORE_HELD_SINCE,
        retry.INVALID_RETRIES,
        retry.FIRST_ATTEMPT_AT,
        retry.FEEDBACK,
        retry.REQUEUED_AT,
        retry.CHECKED,
        retry.LEASE_WAITS,
        retry.CAPACITY_WAITS,
        retry.RETRIES,
        USAGE_OPTION,
    } <= set(names)


def test_a_first_delivery_is_not_requeued_even_once_checked():
    assert not retry.was_requeued({})
    assert not retry.was_requeued({retry.CHECKED: True, "max_age_seconds": 5})
    assert not retry.was_requeued({retry.RETRIES: 0})


@pytest.mark.parametrize(
    "name",
    [
        retry.HELD_SINCE,
        retry.CORE_HELD_SINCE,
        retry.INVALID_RETRIES,
        retry.RETRIES,
        retry.REQUEUED_AT,
        retry.CAPACITY_WAITS,
        retry.LEASE_WAITS,
    ],
)
def test_a_retry_a_hold_a_wait_or_a_requeue_marks_the_message(name):
    assert retry.was_requeued({name: 1})


def test_the_attempt_counts_ordinary_and_invalid_answer_retries():
    assert retry.attempt({}) == 1
    assert retry.attempt({retry.RETRIES: 2, retry.INVALID_RETRIES: 3}) == 6
    assert retry.attempt({retry.CAPACITY_WAITS: 4, retry.LEASE_WAITS: 2}) == 1
    assert retry.attempt({retry.RETRIES: None}) == 1


def test_a_requeue_starts_a_fresh_attempt_and_keeps_the_producers_options():
    options = {
        retry.RETRIES: 3,
        "traceback": "Traceback ...",
        "requeue_timestamp": 1_000,
        retry.INVALID_RETRIES: 2,
        retry.FEEDBACK: {"answer": "x", "problem": "y"},
        retry.FIRST_ATTEMPT_AT: 10.0,
        USAGE_OPTION: {"prompt_tokens": 5},
        "redis_message_id": "abc",
        "max_age_seconds": 60,
        "eta": 123,
    }

    fresh = retry.requeued_options(options, now=42.0)

    assert fresh == {
        "max_age_seconds": 60,
        "eta": 123,
        retry.REQUEUED_AT: 42.0,
        retry.CHECKED: True,
    }
    assert options[retry.RETRIES] == 3  # the dead letter's own options are untouched
    assert retry.was_requeued(fresh) and retry.attempt(fresh) == 1
