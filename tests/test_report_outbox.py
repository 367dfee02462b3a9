"""The report outbox: failed, skipped and expired jobs reach Core even while it is down."""

from __future__ import annotations

import threading
import time

from actors import intent_classify
from llm_worker.core.outbox import Report
from tests.support import accepted_states, drain, notifications, run_cli, send_unchecked, wait_for


def test_failure_report_lands_once_core_is_back(env, worker, fake_llm, fake_core, redis_client):
    svc = env(JOB_MAX_RETRIES=4, JOB_RETRY_MIN_BACKOFF_SECONDS=0.3)
    fake_core.failures.extend([503, 503, 503])  # Core is down for three calls
    send_unchecked(intent_classify, 1, 42, {"text": 5})
    drain(worker, "llm.intent")

    assert svc.outbox.counts()["pending"] == 1  # Core refused the report: it waits
    assert notifications(redis_client) == []  # the user hears of it only after Core
    wait_for(lambda: accepted_states(fake_core, 1), timeout=15)

    [update] = [u for u in fake_core.job_updates(1) if u["status"] == "failed"][-1:]
    assert "payload.text" in update["error"]
    assert accepted_states(fake_core, 1) == ["failed"]
    wait_for(lambda: notifications(redis_client), timeout=10)  # published after Core answered
    assert [n["message_type"] for n in notifications(redis_client)] == ["llm_failure"]
    wait_for(lambda: svc.outbox.counts() == {"pending": 0, "dead": 0}, timeout=10)
    assert fake_llm.chat_requests() == []


def test_stale_report_waits_for_core_too(env, worker, fake_llm, fake_core, redis_client):
    svc = env(JOB_MAX_RETRIES=3, JOB_RETRY_MIN_BACKOFF_SECONDS=0.2)
    fake_core.failures.extend([500, 500])
    intent_classify.send_with_options(args=(2, 42, {"text": "x"}), max_age_seconds=1, delay=1500)
    drain(worker, "llm.intent")

    wait_for(lambda: accepted_states(fake_core, 2), timeout=15)
    assert accepted_states(fake_core, 2) == ["skipped"]
    # The report leaves the outbox once Core's answer is in (just after Core saw it).
    wait_for(lambda: svc.outbox.counts()["pending"] == 0, timeout=10)
    assert notifications(redis_client) == []  # skipped jobs notify no one


def test_report_core_never_accepts_is_kept_dead_and_can_be_requeued(
    env, worker, cli_env, fake_llm, fake_core, redis_client
):
    svc = env(JOB_MAX_RETRIES=1, JOB_RETRY_MIN_BACKOFF_SECONDS=0.1)
    fake_core.failures.extend([503, 503])  # the first try and the one retry
    send_unchecked(intent_classify, 3, 42, {"text": None})
    drain(worker, "llm.intent")
    wait_for(lambda: svc.outbox.counts()["dead"] == 1, timeout=10)
    assert svc.outbox.counts()["pending"] == 0
    assert accepted_states(fake_core, 3) == []

    status = run_cli(cli_env, "status")
    assert "job reports waiting for Core: 0, dead: 1" in status.stdout
    requeued = run_cli(cli_env, "requeue-dead")
    assert requeued.returncode == 0, requeued.stderr
    # The job runs again as a fresh attempt (and fails again); its dead report is dropped.
    assert "llm.intent: requeued 1" in requeued.stdout
    assert "requeued 0 dead reports" in requeued.stdout

    wait_for(lambda: accepted_states(fake_core, 3), timeout=10)  # the running worker reports it
    assert accepted_states(fake_core, 3) == ["failed"]
    assert [n["message_type"] for n in notifications(redis_client)] == ["llm_failure"]
    assert svc.outbox.counts() == {"pending": 0, "dead": 0}


def test_two_drains_deliver_a_report_once(env, fake_core, redis_client):
    svc = env()
    fake_core.failures.append(503)
    report = Report(
        message_id="m-1",
        job_type="intent_classify",
        job_id=4,
        user_id=42,
        status="failed",
        error="boom",
        notification=("llm_failure", {"job_type": "intent_classify", "error": "boom"}),
    )
    assert svc.outbox.send(report) is False  # Core refused: pending, due after a backoff
    assert redis_client.get("llmw:finished:m-1") == b"failed"

    fake_core.delay = 0.5  # a slow Core: the first drain is still delivering when others look
    later = time.time() + 60
    results: list[int] = []
    drains = [
        threading.Thread(target=lambda: results.append(svc.outbox.drain(now=later)))
        for _ in range(4)
    ]
    for thread in drains:
        thread.start()
    for thread in drains:
        thread.join()

    assert sorted(results) == [0, 0, 0, 1]
    assert accepted_states(fake_core, 4) == ["failed"]
    assert len(notifications(redis_client)) == 1
    assert svc.outbox.counts() == {"pending": 0, "dead": 0}


def test_a_dead_report_is_dropped_after_its_time_and_a_younger_one_kept(env, fake_core, caplog):
    svc = env(JOB_MAX_RETRIES=0, OUTBOX_DEAD_TTL_SECONDS=3600)
    fake_core.failures.extend([503, 503])
    for n in (5, 6):
        report = Report(
            message_id=f"m-{n}",
            job_type="intent_classify",
            job_id=n,
            user_id=42,
            status="failed",
            error="boom",
        )
        assert svc.outbox.send(report) is False  # one attempt only: dead at once
    assert svc.outbox.counts() == {"pending": 0, "dead": 2}
    svc.redis.zadd("llmw:outbox:dead:since", {"m-5": time.time() - 3601})  # older than its TTL

    with caplog.at_level("ERROR", logger="llm_worker.outbox"):
        svc.outbox.drain()

    assert svc.outbox.counts() == {"pending": 0, "dead": 1}
    assert svc.outbox.report_of("m-6") is not None and svc.outbox.report_of("m-5") is None
    assert "dropped 1 dead reports" in caplog.text and "m-5" in caplog.text
    assert svc.redis.zrange("llmw:outbox:dead:since", 0, -1) == [b"m-6"]
