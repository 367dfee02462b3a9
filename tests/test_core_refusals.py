"""Core's refusals, played by a Core that answers 4xx: permanent ones end the job at
once, credential refusals hold it without spending retries."""

from __future__ import annotations

import logging

import pytest

from actors import intent_classify
from console.ops.status import EXIT_NOT_READY, collect_status
from llm_worker.core.refusals import unauthorized_alarm
from llm_worker.testing.fakes import Reply
from middleware import breaker_status
from tests.support import dead_letters, drain, notifications, send_unchecked, wait_for

ANSWER = {"intent": "reminder", "confidence": 0.9}
#: A hostile refusal: a huge body with an odd header.
HUGE = "x" * 100_000


def refusal(status: int) -> Reply:
    return Reply(
        status=status,
        body={"detail": f"refused {status}", "pad": HUGE},
        headers={"Retry-After": "86400", "X-Odd": "\u00e9"},
    )


@pytest.mark.parametrize("status", [400, 404, 409, 410, 413, 422])
def test_permanent_refusal_fails_the_job_at_once(
    worker, fake_llm, fake_core, redis_client, caplog, status
):
    fake_llm.push(ANSWER)
    fake_core.failures.append(refusal(status))

    with caplog.at_level(logging.ERROR, logger="llm_worker.core"):
        message = intent_classify.send(1, 42, {"text": "remind me"})
        drain(worker, "llm.intent")

    completed, failed = fake_core.job_updates(1)
    assert completed["status"] == "completed"
    assert failed["status"] == "failed"
    assert f"answered HTTP {status}" in failed["error"]
    assert f"refused {status}" in failed["error"]
    assert len(failed["error"]) < 600  # Core's body is truncated
    assert len(fake_llm.chat_requests()) == 1  # not retried
    assert dead_letters(redis_client, "llm.intent") == [message.message_id]
    assert [n["message_type"] for n in notifications(redis_client)] == ["llm_failure"]
    [line] = [r for r in caplog.records if r.name == "llm_worker.core"]
    assert line.levelno == logging.ERROR and f"HTTP {status}" in line.getMessage()


def test_refused_failure_report_is_dead_at_once(worker, fake_llm, fake_core, redis_client, env):
    svc = env()
    fake_llm.push(ANSWER)
    fake_core.failures.extend([refusal(404), refusal(404)])

    message = intent_classify.send(2, 42, {"text": "remind me"})
    drain(worker, "llm.intent")

    wait_for(lambda: svc.outbox.counts()["dead"] == 1)
    assert svc.outbox.counts() == {"pending": 0, "dead": 1}
    assert len(fake_core.job_updates(2)) == 2  # the result, then the report: no retry
    assert dead_letters(redis_client, "llm.intent") == [message.message_id]
    assert notifications(redis_client) == []  # Core never accepted the failure


def test_credential_refusal_holds_the_job_without_spending_retries(
    worker, fake_llm, fake_core, redis_client, env, caplog
):
    svc = env(CORE_UNAUTHORIZED_HOLD_SECONDS="0.2")
    fake_llm.push(ANSWER)
    # More refusals than JOB_MAX_RETRIES (2): ordinary retries would fail the job.
    fake_core.failures.extend([refusal(401), refusal(403), refusal(401), refusal(401)])

    with caplog.at_level(logging.CRITICAL, logger="llm_worker.core"):
        intent_classify.send(3, 42, {"text": "remind me"})
        wait_for(lambda: len(fake_core.job_updates(3)) >= 3)
        alarm = unauthorized_alarm(redis_client, svc.settings.key_prefix)
        status = collect_status(intent_classify.broker, svc, breaker_status())
        drain(worker, "llm.intent")

    assert alarm is not None and "HTTP 40" in alarm["last_error"]
    assert status.core_unauthorized is not None and status.exit_code == EXIT_NOT_READY
    updates = fake_core.job_updates(3)
    assert [u["status"] for u in updates] == ["completed"] * 5
    assert len(fake_llm.chat_requests()) == 1  # the held job reuses its LLM result
    assert [n["message_type"] for n in notifications(redis_client)] == ["llm_intent_result"]
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(critical) == 4 and "CORE_API_TOKEN" in critical[0].getMessage()


def test_credential_refusal_holds_reports_without_spending_attempts(
    worker, fake_llm, fake_core, redis_client, env
):
    svc = env(CORE_UNAUTHORIZED_HOLD_SECONDS="0.1")
    fake_core.failures.extend([refusal(403)] * 5)  # JOB_MAX_RETRIES=2: 3 attempts allowed

    send_unchecked(intent_classify, 4, 42, {"text": ""})
    drain(worker, "llm.intent")
    wait_for(lambda: len(fake_core.job_updates(4)) == 6, timeout=20)

    [*refused, accepted] = fake_core.job_updates(4)
    assert len(refused) == 5 and accepted["status"] == "failed"
    wait_for(lambda: svc.outbox.counts() == {"pending": 0, "dead": 0})
    assert [n["message_type"] for n in notifications(redis_client)] == ["llm_failure"]


@pytest.mark.parametrize("status", [429, 503])
def test_transient_refusals_are_retried(worker, fake_llm, fake_core, redis_client, status):
    fake_llm.push(ANSWER)
    fake_core.failures.append(refusal(status))

    intent_classify.send(5, 42, {"text": "remind me"})
    drain(worker, "llm.intent")

    assert [u["status"] for u in fake_core.job_updates(5)] == ["completed", "completed"]
    assert len(fake_llm.chat_requests()) == 1
