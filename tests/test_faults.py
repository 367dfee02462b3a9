"""Faults: redelivery, Core outages, killed workers, a restarted Redis, malformed jobs."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from actors import broker, intent_classify, task_match
from llm_worker.testing.fakes import Reply
from middleware.job_arguments import InvalidJob
from tests.payloads import GOOD_REMINDER
from tests.support import (
    TEST_REDIS_URL,
    drain,
    log_says,
    notifications,
    produce,
    run_cli,
    send_unchecked,
    usage,
    wait_for,
)


def test_send_time_check_refuses_a_malformed_job(fake_llm, redis_client):
    with pytest.raises(InvalidJob, match=r"intent_classify: invalid payload: payload\.text"):
        intent_classify.send(1, 42, {"text": 5})
    with pytest.raises(InvalidJob, match="user_id"):
        intent_classify.send(1, "42", {"text": "x"})
    with pytest.raises(InvalidJob, match="over the limit"):
        intent_classify.send(1, 42, {"text": "x" * 2_000_000})
    assert redis_client.llen("dramatiq:llm.intent") == 0


def test_oversized_job_from_a_bypassing_producer_fails_cleanly(worker, fake_llm, fake_core):
    send_unchecked(intent_classify, 2, 42, {"text": "x" * 2_000_000})
    drain(worker, "llm.intent")

    [update] = fake_core.job_updates(2)
    assert update["status"] == "failed"
    assert "over the limit of 1048576" in update["error"]
    assert fake_llm.chat_requests() == []


def test_the_largest_job_send_accepts_runs(env, worker, fake_llm, fake_core):
    env(JOB_MAX_PAYLOAD_BYTES=3000)
    fake_llm.answers["IntentResult"] = GOOD_REMINDER
    length = 3000
    while True:  # the longest text the send-time check lets through
        try:
            intent_classify.send(5, 42, {"text": "é" + "x" * length})
            break
        except InvalidJob:
            length -= 1
    with pytest.raises(InvalidJob, match="over the limit of 3000"):
        intent_classify.send(5, 42, {"text": "é" + "x" * (length + 1)})
    drain(worker, "llm.intent")

    [update] = fake_core.job_updates(5)
    assert (update["status"], update["result"]) == ("completed", GOOD_REMINDER)
    assert len(fake_llm.chat_requests()) == 1


def test_redelivered_job_notifies_once_and_does_not_pay_twice(
    worker, fake_llm, fake_core, redis_client
):
    fake_llm.answers["IntentResult"] = GOOD_REMINDER
    message = intent_classify.send(3, 42, {"text": "x"})
    drain(worker, "llm.intent")

    broker.enqueue(message)  # the broker delivers it again (at least once)
    drain(worker, "llm.intent")

    assert len(fake_llm.chat_requests()) == 1
    [update] = fake_core.job_updates(3)  # the finished job is not run again
    assert (update["status"], update["result"]) == ("completed", GOOD_REMINDER)
    assert [n["message_type"] for n in notifications(redis_client)] == ["llm_intent_result"]
    assert redis_client.get(f"llmw:finished:{message.message_id}") == b"completed"


def test_core_outage_retries_reuse_the_llm_result(env, worker, fake_llm, fake_core, redis_client):
    env(JOB_MAX_RETRIES=5)
    fake_core.tasks[42] = [{"id": 9, "title": "Trip", "description": None}]
    fake_llm.answers["TaskMatchResult"] = {"task_id": 9, "confidence": 0.9, "reason": "trip"}
    fake_core.failures.extend([200, 503, 200, 502])  # GET tasks ok, PATCH 503, GET ok, PATCH 502

    task_match.send(4, 42, {"content": "hotel in Rome"})
    drain(worker, "llm.task_match")

    assert len(fake_llm.chat_requests()) == 1
    updates = fake_core.job_updates(4)
    assert updates[-1]["status"] == "completed"
    assert updates[-1]["usage"] == usage(1)
    assert [n["message_type"] for n in notifications(redis_client)] == ["llm_task_match_result"]
    assert not redis_client.exists("llmw:breaker")  # Core failing is not an LLM outage


#: The killed worker test's settings: a dead process is one whose heartbeat is this old ...
HEARTBEAT_TIMEOUT_SECONDS = 3.0
#: ... and each live process looks for dead ones' messages this often.
RECOVERY_INTERVAL_SECONDS = 1.0
#: How long the job takes when it runs again (at least a consumer's heartbeat period, 1 s).
JOB_SECONDS = 1.0
#: What a busy machine may add: a consumer's poll, the Core report, scheduling.
SLACK_SECONDS = 5.0


def test_killed_worker_job_runs_again_within_heartbeat_timeout_and_one_interval(
    start_worker, cli_env, fake_llm, fake_core, tmp_path
):
    """A job in flight in a SIGKILLed worker process runs again in the next worker process
    within BROKER_HEARTBEAT_TIMEOUT_SECONDS + BROKER_RECOVERY_INTERVAL_SECONDS + the job's own
    time (README, Failure handling: about 70 s with the defaults), never while the killed
    process's heartbeat is younger than the timeout; Dramatiq's chance of maintenance is
    turned off, so the bound does not depend on luck."""
    fake_llm.fallback = lambda request: Reply(content=GOOD_REMINDER, delay=5.0)
    settings = {
        "BROKER_MAINTENANCE_CHANCE": "1",
        "BROKER_HEARTBEAT_TIMEOUT_SECONDS": str(HEARTBEAT_TIMEOUT_SECONDS),
        "BROKER_RECOVERY_INTERVAL_SECONDS": str(RECOVERY_INTERVAL_SECONDS),
    }
    first = start_worker("--processes", "1", "--threads", "2", **settings)
    wait_for(lambda: log_says(tmp_path / "worker0.log", "Worker process is ready"), 60)
    intent_classify.send(5, 42, {"text": "x"})
    wait_for(fake_llm.chat_requests, timeout=30)  # the job is in flight

    child = subprocess.run(["pgrep", "-P", str(first.pid)], capture_output=True, text=True)
    for pid in child.stdout.split():
        subprocess.run(["kill", "-KILL", pid], check=False)
    killed_at = time.monotonic()
    first.wait(timeout=30)  # the CLI stops when one of its processes dies
    status = json.loads(run_cli(cli_env, "status", "--json", **settings).stdout)
    intent = next(q for q in status["queues"] if q["name"] == "llm.intent")
    assert intent["in_flight"] == 1 and fake_core.job_updates(5) == []

    fake_llm.fallback = lambda request: Reply(content=GOOD_REMINDER, delay=JOB_SECONDS)
    start_worker("--processes", "1", "--threads", "2", **settings)
    wait_for(lambda: log_says(tmp_path / "worker1.log", "Worker process is ready"), 60)
    ready_at = time.monotonic()
    wait_for(lambda: fake_core.job_updates(5), timeout=60, interval=0.05)
    done_at = time.monotonic()

    # Recovery can start once the heartbeat timed out and a live process runs.
    recoverable_at = max(killed_at + HEARTBEAT_TIMEOUT_SECONDS, ready_at)
    print(
        f"\nkilled worker's job completed {done_at - killed_at:.1f} s after the kill, "
        f"{done_at - recoverable_at:.1f} s after it could be recovered"
    )
    assert done_at - killed_at >= HEARTBEAT_TIMEOUT_SECONDS
    assert done_at - recoverable_at < RECOVERY_INTERVAL_SECONDS + JOB_SECONDS + SLACK_SECONDS
    assert [u["status"] for u in fake_core.job_updates(5)] == ["completed"]


def _send_intent(env, job_id, delay_ms=None):
    produce(
        env,
        "from actors import intent_classify as a; "
        f"a.send_with_options(args=({job_id}, 42, {{'text': 'x'}}), delay={delay_ms})",
    )


def test_worker_survives_a_redis_restart(start_worker, cli_env, fake_llm, fake_core, own_redis):
    url, restart = own_redis
    fake_llm.answers["IntentResult"] = GOOD_REMINDER
    start_worker("--processes", "1", "--threads", "2", REDIS_URL=url)
    env = {**cli_env, "REDIS_URL": url}
    _send_intent(env, 6)
    wait_for(lambda: fake_core.job_updates(6), timeout=30)

    restart()  # the worker is not restarted
    _send_intent(env, 7)

    wait_for(lambda: fake_core.job_updates(7), timeout=60)
    assert fake_core.job_updates(7)[0]["status"] == "completed"


def test_a_worker_cut_from_redis_says_so_without_filling_its_log(
    start_worker, cli_env, fake_llm, fake_core, redis_server, tmp_path
):
    fake_llm.answers["IntentResult"] = GOOD_REMINDER
    start_worker("--processes", "1", "--threads", "4", REDIS_URL=redis_server.url)
    env = {**cli_env, "REDIS_URL": redis_server.url}
    _send_intent(env, 8)
    wait_for(lambda: fake_core.job_updates(8), timeout=30)
    log = tmp_path / "worker0.log"
    before = len(log.read_bytes().splitlines())

    redis_server.stop()
    time.sleep(12)  # every consumer and background thread fails again and again meanwhile
    redis_server.start()
    _send_intent(env, 9)
    wait_for(lambda: fake_core.job_updates(9), timeout=60)

    lines = log.read_text(errors="replace").splitlines()[before:]
    assert sum("Consumer encountered a connection error" in line for line in lines) == 1
    failed_passes = [line.split("] [")[2] for line in lines if ": pass failed (" in line]
    assert failed_passes and len(failed_passes) == len(set(failed_passes))  # once per thread
    assert sum("Traceback" in line for line in lines) <= 3 * len(failed_passes)  # chained
    assert len(lines) < 600, f"{len(lines)} lines logged while Redis was away"


@pytest.mark.skipif(
    not os.path.exists("/usr/lib/rabbitmq/bin/rabbitmq-server"), reason="needs rabbitmq-server"
)
def test_worker_survives_a_rabbitmq_restart(
    start_worker, cli_env, fake_llm, fake_core, own_rabbitmq
):
    url, restart = own_rabbitmq
    fake_llm.answers["IntentResult"] = GOOD_REMINDER
    start_worker("--processes", "1", "--threads", "2", BROKER_URL=url)
    env = {**cli_env, "BROKER_URL": url}
    _send_intent(env, 8)
    wait_for(lambda: fake_core.job_updates(8), timeout=30)
    _send_intent(env, 9, delay_ms=15_000)  # waits in the broker across the restart

    restart()  # the worker is not restarted
    _send_intent(env, 10)

    wait_for(lambda: fake_core.job_updates(10), timeout=60)
    wait_for(lambda: fake_core.job_updates(9), timeout=60)
    assert [u["status"] for u in fake_core.job_updates()] == ["completed"] * 3


def test_recovery_requeues_a_dead_process_messages_whatever_the_chance(redis_client):
    from dramatiq import Message

    from llm_worker.broker.redis_broker import RecoveringRedisBroker

    def process_broker():  # Dramatiq's maintenance by chance as good as off
        return RecoveringRedisBroker(
            url=TEST_REDIS_URL, heartbeat_timeout=200, maintenance_chance=1
        )

    queue = "recovery-test"
    dead = process_broker()
    dead.declare_queue(queue)
    dead.enqueue(Message(queue_name=queue, actor_name="a", args=(), kwargs={}, options={}))
    consumer = dead.consume(queue, prefetch=1, timeout=100)
    wait_for(lambda: next(consumer), timeout=5)  # fetched, never acknowledged: then it "dies"
    assert redis_client.llen(f"dramatiq:{queue}") == 0

    alive = process_broker()
    time.sleep(0.3)  # the dead process's heartbeat times out
    alive.recover_dead_workers(queue)

    assert redis_client.llen(f"dramatiq:{queue}") == 1
    assert redis_client.scard(f"dramatiq:__acks__.{dead.broker_id}.{queue}") == 0
