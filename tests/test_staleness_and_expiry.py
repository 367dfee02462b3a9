"""Stale jobs are skipped; jobs that waited past the expiry age are expired once."""

from __future__ import annotations

import os
import threading
import time

import pytest

from actors import broker, intent_classify, sweep_expired
from llm_worker.fleet.breaker import BreakerStore
from llm_worker.jobs.sweep import sweep_redis_queues
from llm_worker.services import services
from llm_worker.settings import Settings
from tests.payloads import GOOD_TASK
from tests.support import drain, notifications, produce, running_worker, wait_for


def _enqueue_aged(job_id, age_seconds, **options):
    message = intent_classify.message_with_options(args=(job_id, 42, {"text": "x"}), **options)
    aged = message.copy(message_timestamp=int((time.time() - age_seconds) * 1000))
    return broker.enqueue(aged)


def test_documented_defaults(monkeypatch):
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    config = Settings()
    assert config.message_max_age_seconds == 300
    assert config.llm_max_retries == 5
    assert config.llm_retry_backoff_seconds == 1
    assert config.llm_probe_interval_seconds == 30
    assert config.llm_unavailable_expiry_seconds == 1_209_600
    assert config.sweep_cron == "*/10 * * * *"
    assert config.llm_timeout_seconds == 120


def test_stale_job_is_skipped_without_llm_call(worker, fake_llm, fake_core, redis_client):
    _enqueue_aged(70, 400)
    drain(worker, "llm.intent")

    [update] = fake_core.job_updates(70)
    assert update["status"] == "skipped"
    assert update["error"].startswith("stale: job was 400s old when picked up (limit 300s)")
    assert fake_llm.chat_requests() == []
    assert notifications(redis_client) == []


def test_per_message_max_age_override(worker, fake_llm, fake_core):
    fake_llm.answers["IntentResult"] = GOOD_TASK
    _enqueue_aged(71, 400, max_age_seconds=600)
    _enqueue_aged(72, 20, max_age_seconds=10)
    drain(worker, "llm.intent")

    assert fake_core.job_updates(71)[0]["status"] == "completed"
    assert fake_core.job_updates(72)[0]["status"] == "skipped"


def test_time_in_an_outage_does_not_count_towards_staleness(env, worker, fake_llm, fake_core):
    svc = env()
    fake_llm.answers["IntentResult"] = GOOD_TASK
    store = BreakerStore(svc.redis, "llmw", outage_retention=3600)
    now = time.time()
    store.open("down", next_probe_at=now - 60, now=now - 500)
    store.close(now=now - 30)  # a 470 s outage that ended 30 s ago

    _enqueue_aged(73, 520)  # 50 s of it outside the outage
    drain(worker, "llm.intent")

    assert fake_core.job_updates(73)[0]["status"] == "completed"


def test_job_picked_up_after_expiry_is_expired_not_run(
    env, worker, fake_llm, fake_core, redis_client
):
    env(LLM_UNAVAILABLE_EXPIRY_SECONDS=3)
    fake_llm.answers["IntentResult"] = GOOD_TASK
    _enqueue_aged(74, 5, llm_held_since=time.time() - 5)
    drain(worker, "llm.intent")

    [update] = fake_core.job_updates(74)
    assert update["status"] == "failed"
    assert update["error"].startswith("expired: waited")
    assert fake_llm.chat_requests() == []
    [note] = notifications(redis_client)
    assert (note["message_type"], note["job_id"]) == ("llm_expiry", 74)


def test_job_queued_during_an_outage_and_never_held_expires_at_pick_up(
    env, worker, fake_llm, fake_core, redis_client
):
    svc = env(LLM_UNAVAILABLE_EXPIRY_SECONDS=1, LLM_PROBE_INTERVAL_SECONDS=0.2)
    fake_llm.answers["IntentResult"] = GOOD_TASK
    BreakerStore(svc.redis, "llmw", outage_retention=60).open("down", next_probe_at=time.time() + 2)
    wait_for(lambda: worker.consumers["llm.intent"].paused)  # nothing picks it up meanwhile
    intent_classify.send(75, 42, {"text": "x"})  # queued while the LLM is down
    wait_for(lambda: not redis_client.exists("llmw:breaker"), timeout=10)  # LLM back, no sweep
    drain(worker, "llm.intent")

    [update] = fake_core.job_updates(75)
    assert update["status"] == "failed"
    assert update["error"].startswith("expired: waited")
    assert [r for r in fake_llm.chat_requests() if r["json"].get("max_tokens") != 1] == []
    assert [n["message_type"] for n in notifications(redis_client)] == ["llm_expiry"]


def test_sweeper_expires_queued_and_held_jobs_once(env, worker, fake_llm, fake_core, redis_client):
    expiry = 1.0
    env(LLM_UNAVAILABLE_EXPIRY_SECONDS=expiry, LLM_PROBE_INTERVAL_SECONDS=60)
    fake_llm.down()
    for job_id in range(80, 85):
        intent_classify.send(job_id, 42, {"text": "x"})
    wait_for(lambda: fake_llm.requests == [] and redis_client.exists("llmw:breaker"))
    worker.join()
    time.sleep(expiry + 0.5)  # every held job is past LLM_UNAVAILABLE_EXPIRY_SECONDS

    sweep_expired.send()
    wait_for(lambda: len(fake_core.job_updates()) == 5)
    drain(worker, "llm.sweep")

    for job_id in range(80, 85):
        [update] = fake_core.job_updates(job_id)
        assert update["status"] == "failed"
        assert "expired" in update["error"]
    notes = notifications(redis_client)
    assert sorted(n["job_id"] for n in notes) == list(range(80, 85))
    assert {n["message_type"] for n in notes} == {"llm_expiry"}
    for key in ("llm.intent", "llm.intent.DQ"):
        assert redis_client.hlen(f"dramatiq:{key}.msgs") == 0
        assert redis_client.llen(f"dramatiq:{key}") == 0


def test_two_sweepers_expire_each_job_once(env, fake_core, redis_client):
    svc = env(LLM_UNAVAILABLE_EXPIRY_SECONDS=1)
    for job_id in range(90, 100):  # queued, never picked up: no worker runs
        _enqueue_aged(job_id, 10)

    reports = []

    def sweep():
        reports.append(sweep_redis_queues(svc, broker, ["llm.intent"]))

    sweepers = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in sweepers:
        thread.start()
    for thread in sweepers:
        thread.join()

    assert sum(r.expired for r in reports) == 10
    assert len(fake_core.job_updates()) == 10
    assert sorted(n["job_id"] for n in notifications(redis_client)) == list(range(90, 100))
    assert redis_client.llen("dramatiq:llm.intent") == 0
    assert services() is svc


def _llm_chats(fake_llm):
    """The LLM's chat requests that were not probes (a probe asks for one token)."""
    return [r for r in fake_llm.chat_requests() if r["json"].get("max_tokens") != 1]


#: The expiry scenario's worker settings: a short expiry, frequent probes.
OUTAGE_SETTINGS = {"LLM_UNAVAILABLE_EXPIRY_SECONDS": "3", "LLM_PROBE_INTERVAL_SECONDS": "0.5"}


def _outage_outlives_two_jobs(send, fake_llm, fake_core, redis_client):
    """With a worker running: the LLM goes down, job 1 is sent (it opens the breaker and is
    held), then job 2 (the consumers paused: it never meets the outage); the LLM comes back
    after their expiry age, before any sweep. Both must be expired, neither sent to the LLM."""
    fake_llm.down()
    send(1)
    wait_for(lambda: redis_client.exists("llmw:breaker"), timeout=30)
    send(2)
    time.sleep(4)  # both older than the expiry age
    fake_llm.up()

    wait_for(lambda: len(fake_core.job_updates()) == 2, timeout=60, interval=0.1)
    for job_id in (1, 2):
        [update] = fake_core.job_updates(job_id)
        assert update["status"] == "failed", update
        assert update["error"].startswith("expired: waited"), update
    assert _llm_chats(fake_llm) == []


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    "processes, attempt",
    [(1, 0), (1, 1), (1, 2), (2, 0)],
    ids=["one-process-1", "one-process-2", "one-process-3", "two-processes"],
)
def test_cli_worker_expires_jobs_queued_during_an_outage_that_outlived_them(
    start_worker, fake_llm, fake_core, redis_client, tmp_path, processes, attempt
):
    """The reported scenario, with the real `dramatiq` CLI, run several times and with two
    processes (no sweep: the worker schedules none)."""
    fake_llm.answers["IntentResult"] = GOOD_TASK
    start_worker("--processes", str(processes), "--threads", "2", **OUTAGE_SETTINGS)
    log = tmp_path / "worker0.log"
    wait_for(lambda: log.read_text().count("Worker process is ready") == processes, 60)

    def send(job_id):
        intent_classify.send(job_id, 42, {"text": "x"})

    _outage_outlives_two_jobs(send, fake_llm, fake_core, redis_client)


@pytest.mark.timeout(180)
def test_worker_started_after_an_outage_expires_the_jobs_it_outlived(
    start_worker, fake_llm, fake_core, redis_client, tmp_path
):
    """Jobs sent while the LLM was down and no worker ran (so no breaker was ever opened),
    picked up after their expiry age by a worker started once the LLM is back."""
    fake_llm.answers["IntentResult"] = GOOD_TASK
    for job_id in (3, 4):
        intent_classify.send(job_id, 42, {"text": "x"})
    time.sleep(3.5)
    start_worker("--processes", "1", "--threads", "2", LLM_UNAVAILABLE_EXPIRY_SECONDS="3")

    wait_for(lambda: len(fake_core.job_updates()) == 2, timeout=60, interval=0.1)
    assert {u["status"] for u in fake_core.job_updates()} == {"failed"}
    assert _llm_chats(fake_llm) == []


def test_time_waiting_out_a_429_cooldown_does_not_count_towards_staleness(env, fake_llm, fake_core):
    """One worker thread: job 20's call gets a 429 (a 3 s cooldown for the fleet), job 21
    waits the cooldown out on the thread, so job 22, queued behind it, is first picked up
    about 3 s old, over its 1 s limit. The cooldown is discounted like an outage: it runs."""
    from llm_worker.testing.fakes import Reply

    env(MESSAGE_MAX_AGE_SECONDS=1, LLM_CAPACITY_WAIT_SECONDS=10)
    fake_llm.answers["IntentResult"] = GOOD_TASK
    busy = {"error": {"message": "slow down"}}
    fake_llm.push(Reply(status=429, body=busy, headers={"Retry-After": "3"}))
    with running_worker(broker, threads=1) as worker:
        intent_classify.send(20, 42, {"text": "x"})
        wait_for(lambda: fake_llm.chat_requests(), timeout=10)
        for job_id in (21, 22):
            intent_classify.send(job_id, 42, {"text": "x"})
        wait_for(lambda: len(fake_core.job_updates()) == 3, timeout=30)
        drain(worker, "llm.intent")
    for job_id in (20, 21, 22):
        assert [u["status"] for u in fake_core.job_updates(job_id)] == ["completed"], job_id


@pytest.mark.timeout(300)
@pytest.mark.skipif(
    not os.path.exists("/usr/lib/rabbitmq/bin/rabbitmq-server"), reason="needs rabbitmq-server"
)
def test_cli_worker_on_rabbitmq_expires_jobs_that_outlived_an_outage(
    start_worker, cli_env, fake_llm, fake_core, redis_client, tmp_path, own_rabbitmq
):
    """The same scenario with RabbitMQ, where nothing sweeps: expiry at pick-up is all."""
    url, _ = own_rabbitmq
    fake_llm.answers["IntentResult"] = GOOD_TASK
    start_worker("--processes", "1", "--threads", "2", BROKER_URL=url, **OUTAGE_SETTINGS)
    wait_for(lambda: "Worker process is ready" in (tmp_path / "worker0.log").read_text(), 60)
    producer = {**cli_env, "BROKER_URL": url}

    def send(job_id):
        code = f"from actors import intent_classify as a; a.send({job_id}, 42, {{'text': 'x'}})"
        produce(producer, code)

    _outage_outlives_two_jobs(send, fake_llm, fake_core, redis_client)


def test_a_job_that_expires_waiting_for_llm_capacity_is_expired_not_sent(
    env, fake_llm, fake_core, redis_client
):
    """One LLM slot for the fleet: job 24 holds it for 3 s; job 25, picked up at once and
    so not expired then, waits for the slot on its thread past its 2 s expiry age. It is
    expired instead of being sent to the LLM."""
    from llm_worker.testing.fakes import Reply

    env(
        LLM_UNAVAILABLE_EXPIRY_SECONDS=2,
        LLM_MAX_CONCURRENT_REQUESTS=1,
        LLM_CAPACITY_WAIT_SECONDS=10,
    )
    fake_llm.answers["IntentResult"] = GOOD_TASK
    fake_llm.push(Reply(content=GOOD_TASK, delay=3))
    with running_worker(broker, threads=2) as worker:
        intent_classify.send(24, 42, {"text": "x"})
        wait_for(lambda: fake_llm.chat_requests(), timeout=10)
        intent_classify.send(25, 42, {"text": "x"})
        wait_for(lambda: len(fake_core.job_updates()) == 2, timeout=30)
        drain(worker, "llm.intent")
    assert [u["status"] for u in fake_core.job_updates(24)] == ["completed"]
    [update] = fake_core.job_updates(25)
    assert update["status"] == "failed" and update["error"].startswith("expired: waited")
    assert len(_llm_chats(fake_llm)) == 1
    assert [(n["message_type"], n["job_id"]) for n in notifications(redis_client)][-1] == (
        "llm_expiry",
        25,
    )
