"""The retry policy: the options a job keeps, what marks a requeue, what a requeue resets."""

from __future__ import annotations

import dramatiq
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


def test_invalid_answers_back_off_by_doubling_without_jitter():
    assert [retry.backoff(n, base=1.0) for n in range(5)] == [1, 2, 4, 8, 16]
    assert [int(retry.backoff(n, base=0.02) * 1000) for n in range(3)] == [20, 40, 80]


def test_a_fixed_wait_does_not_grow():
    assert [retry.backoff(n, base=5.0, factor=1) for n in range(4)] == [5.0] * 4


def test_capacity_waits_have_a_floor_and_spread_by_up_to_a_quarter():
    minimum = retry.MIN_CAPACITY_WAIT_SECONDS
    for _ in range(200):
        short = retry.backoff(0, base=0.0, minimum=minimum, spread=0.25)
        long = retry.backoff(0, base=2.0, minimum=minimum, spread=0.25)
        assert minimum <= short <= minimum * 1.25
        assert 2.0 <= long <= 2.5


class RecordingBroker:
    """Records what :func:`retry.send_again` asks of a broker."""

    def __init__(self) -> None:
        self.enqueued: list[tuple[object, int | None]] = []

    def enqueue(self, message: object, *, delay: int | None = None) -> object:
        self.enqueued.append((message, delay))
        return message


@pytest.mark.parametrize(("seconds", "delay_ms"), [(0.02, 20), (1.5, 1500), (0.0001, 1), (-3.0, 1)])
def test_sending_again_asks_for_at_least_one_millisecond(seconds, delay_ms):
    broker = RecordingBroker()
    message = object()

    assert retry.send_again(broker, message, seconds) == delay_ms
    assert broker.enqueued == [(message, delay_ms)]


def test_a_requeue_resets_every_attempt_counter_and_hold_mark():
    options = {
        retry.SERVER_ERRORS: 3,
        retry.LEASE_WAITS: 2,
        retry.CAPACITY_WAITS: 5,
        retry.HELD_SINCE: 10.0,
        retry.CORE_HELD_SINCE: 11.0,
        retry.RETRIES: 1,
    }

    fresh = retry.requeued_options(options, now=42.0)

    assert fresh == {retry.REQUEUED_AT: 42.0, retry.CHECKED: True}


def test_every_option_but_the_requeues_own_marks_and_the_trace_context_is_reset_by_a_requeue():
    kept = {option.name for option in retry.OPTIONS if option.on_requeue != "reset"}

    assert kept == {retry.REQUEUED_AT, retry.CHECKED, "traceparent", "tracestate"}


def test_a_requeued_message_drops_its_attempts_options_keeping_its_identity():
    dead = dramatiq.Message(
        queue_name="llm.intent",
        actor_name="intent_classify",
        args=(1, 42, {"text": "x"}),
        kwargs={},
        options={retry.RETRIES: 5, retry.SERVER_ERRORS: 2, "traceback": "...", "priority": 1},
    )

    fresh = retry.requeued_message(dead)

    assert set(fresh.options) == {"priority", retry.REQUEUED_AT, retry.CHECKED}
    assert (fresh.message_id, fresh.message_timestamp) == (dead.message_id, dead.message_timestamp)
    assert fresh.args == dead.args and fresh.queue_name == dead.queue_name
    assert dead.options[retry.RETRIES] == 5
