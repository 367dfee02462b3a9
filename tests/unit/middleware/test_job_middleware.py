"""JobMiddleware: every job middleware declares ``job_kind`` and reads options as Dramatiq does."""

from __future__ import annotations

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from actors.intent import IntentPayload
from llm_worker.jobs.kind import CoreJob
from middleware import (
    CircuitBreaker,
    ExpiryCheck,
    FinishedJobCheck,
    InvalidResponseBackoff,
    JobArgumentsCheck,
    JobMiddleware,
    JobOutcomeLog,
    JobRetries,
    LLMCapacity,
    MessageAgeCheck,
)

JOB_MIDDLEWARE = [
    CircuitBreaker,
    ExpiryCheck,
    FinishedJobCheck,
    InvalidResponseBackoff,
    JobArgumentsCheck,
    JobOutcomeLog,
    JobRetries,
    LLMCapacity,
    MessageAgeCheck,
]


@pytest.mark.parametrize("middleware", JOB_MIDDLEWARE, ids=lambda m: m.__name__)
def test_a_job_actor_declares_on_any_one_job_middleware(middleware):
    broker = StubBroker(middleware=[middleware()])
    try:
        actor = dramatiq.actor(broker=broker, job_kind=CoreJob(IntentPayload))(lambda: None)
        assert isinstance(broker.middleware[0], JobMiddleware)
        assert actor.options["job_kind"].payload_model is IntentPayload
    finally:
        broker.close()


def test_job_retries_keeps_dramatiqs_retry_options():
    assert {"job_kind", "max_retries", "throws", "min_backoff"} <= JobRetries().actor_options
    assert MessageAgeCheck().actor_options == {"job_kind", "max_age_seconds"}


def test_an_option_is_read_from_the_message_then_the_actor_then_the_default():
    check = MessageAgeCheck(max_age_seconds=30)
    broker = StubBroker(middleware=[check])
    try:
        plain = dramatiq.actor(broker=broker, actor_name="plain")(lambda: None)
        tuned = dramatiq.actor(broker=broker, actor_name="tuned", max_age_seconds=5)(lambda: None)
        read = check.option
        assert read(broker, plain.message(), "max_age_seconds", 30) == 30
        assert read(broker, tuned.message(), "max_age_seconds", 30) == 5
        sent = tuned.message_with_options(max_age_seconds=0)
        assert read(broker, sent, "max_age_seconds", 30) == 0
    finally:
        broker.close()
