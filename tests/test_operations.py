"""Operating the worker: llm-worker commands, metrics, logs."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from actors import broker, intent_classify
from llm_worker.fleet.breaker import BreakerStore
from llm_worker.jobs.retry import HELD_SINCE
from llm_worker.testing.fakes import Reply
from tests.payloads import GOOD_REMINDER
from tests.support import (
    ROOT,
    drain,
    free_port,
    log_says,
    notifications,
    run_cli,
    scrape_metrics,
    send_unchecked,
    wait_for,
)

pytestmark = pytest.mark.cli


def _dead_letter_one(worker):
    """A job with a bad payload: failed at once and dead-lettered."""
    send_unchecked(intent_classify, 99, 42, {"text": 5})
    drain(worker, "llm.intent")


def test_status_reports_queues_breaker_and_held_jobs(env, worker, cli_env, redis_client):
    svc = env()
    _dead_letter_one(worker)
    worker.stop()
    for n in range(3):
        intent_classify.send(n, 42, {"text": "x"})
    held = intent_classify.message_with_options(args=(7, 42, {"text": "x"}))
    held.options[HELD_SINCE] = time.time()
    broker.enqueue(held, delay=60_000)

    healthy = run_cli(cli_env, "status", "--json")
    assert healthy.returncode == 0, healthy.stderr
    status = json.loads(healthy.stdout)
    [intent] = [q for q in status["queues"] if q["name"] == "llm.intent"]
    assert (intent["ready"], intent["delayed"], intent["dead"], intent["held_back"]) == (3, 1, 1, 1)
    assert intent["oldest_age_seconds"] is not None
    assert status["held_back"] == 1
    assert 1_209_500 < status["first_expiry_in_seconds"] <= 1_209_600
    assert status["breaker"]["state"] == "closed"
    # Heartbeats just now: the actors' broker and the plain one send_unchecked used.
    assert status["live_workers"] == 2
    time.sleep(0.2)
    quiet = run_cli(cli_env, "status", "--json", BROKER_HEARTBEAT_TIMEOUT_SECONDS="0.1")
    assert json.loads(quiet.stdout)["live_workers"] == 0

    BreakerStore(svc.redis, "llmw", outage_retention=60).open(
        "LLM answered HTTP 503", next_probe_at=time.time() + 30
    )
    outage = run_cli(cli_env, "status")
    assert outage.returncode == 1
    assert "breaker: OPEN" in outage.stdout and "HTTP 503" in outage.stdout
    assert re.search(r"llm\.intent\s+3\s+1\s+0\s+1", outage.stdout)
    assert "held back by the outage: 1 job, first expires in" in outage.stdout

    down = run_cli(cli_env, "status", REDIS_URL="redis://127.0.0.1:1/13")
    assert down.returncode == 2
    assert down.stderr.startswith("llm-worker: Redis at redis://127.0.0.1:1/13 is not answering")


def test_send_waits_for_the_notification(start_worker, cli_env, fake_llm, fake_core):
    fake_llm.answers["IntentResult"] = GOOD_REMINDER
    start_worker("--processes", "1", "--threads", "2")

    done = run_cli(
        cli_env,
        "send",
        "intent_classify",
        "--job-id",
        "7",
        "--user-id",
        "42",
        "--payload",
        '{"text": "remind me to call mum at 6"}',
        "--wait",
        "30",
    )

    assert done.returncode == 0, done.stderr
    note = json.loads(done.stdout[done.stdout.index("{") :])
    assert note == {
        "user_id": 42,
        "job_id": 7,
        "message_type": "llm_intent_result",
        "content": GOOD_REMINDER,
    }
    assert fake_core.job_updates(7)[0]["status"] == "completed"


def test_send_refuses_unknown_actor_and_bad_json(cli_env):
    unknown = run_cli(cli_env, "send", "nope", "--job-id", "1", "--user-id", "1", "--payload", "{}")
    assert unknown.returncode == 2 and "unknown actor 'nope'" in unknown.stderr
    bad = run_cli(cli_env, "send", "followup", "--job-id", "1", "--user-id", "1", "--payload", "{")
    assert bad.returncode == 2 and bad.stderr.startswith("llm-worker: --payload is not JSON")


def test_requeue_dead_runs_failed_jobs_again(
    env, worker, cli_env, fake_llm, fake_core, redis_client
):
    env(JOB_MAX_RETRIES=0)
    fake_llm.answers["IntentResult"] = GOOD_REMINDER
    fake_core.failures.extend([500] * 120)  # Core is down: every job fails for good
    for n in range(60):
        intent_classify.send(n, 42, {"text": "x"})
    drain(worker, "llm.intent")
    assert redis_client.zcard("dramatiq:llm.intent.XQ") == 60
    fake_core.failures.clear()
    fake_core.clear()

    dry = run_cli(cli_env, "requeue-dead", "--dry-run")
    assert "llm.intent: would requeue 60" in dry.stdout
    assert redis_client.zcard("dramatiq:llm.intent.XQ") == 60
    done = run_cli(cli_env, "requeue-dead", "--queue", "llm.intent")
    assert done.returncode == 0, done.stderr
    assert "60/60" in done.stderr  # the progress bar
    drain(worker, "llm.intent")

    assert redis_client.zcard("dramatiq:llm.intent.XQ") == 0
    assert {u["status"] for u in fake_core.job_updates()} == {"completed"}
    assert len(fake_core.job_updates()) == 60


def test_requeue_dead_runs_invalid_payload_jobs_again(
    env, worker, cli_env, fake_llm, fake_core, redis_client
):
    env(JOB_MAX_PAYLOAD_BYTES=200)
    fake_llm.answers["IntentResult"] = GOOD_REMINDER
    send_unchecked(intent_classify, 81, 42, {"text": "x" * 300})  # over the limit
    send_unchecked(intent_classify, 82, 42, {"text": 82})  # never valid
    drain(worker, "llm.intent")
    assert [u["status"] for u in fake_core.job_updates()] == ["failed", "failed"]
    assert redis_client.zcard("dramatiq:llm.intent.XQ") == 2

    env(JOB_MAX_PAYLOAD_BYTES=4096)  # the operator raises the limit
    done = run_cli(cli_env, "requeue-dead", "--queue", "llm.intent", JOB_MAX_PAYLOAD_BYTES="4096")
    assert done.returncode == 0, done.stderr
    assert "llm.intent: requeued 2" in done.stdout
    drain(worker, "llm.intent")

    assert [u["status"] for u in fake_core.job_updates(81)] == ["failed", "completed"]
    again = fake_core.job_updates(82)  # a fresh attempt: a new state reaches Core
    assert [u["status"] for u in again] == ["failed", "failed"]
    assert "payload.text" in again[-1]["error"]
    assert redis_client.zcard("dramatiq:llm.intent.XQ") == 1
    types = [(n["job_id"], n["message_type"]) for n in notifications(redis_client)]
    assert sorted(types) == [(81, "llm_failure"), (81, "llm_intent_result"), (82, "llm_failure")]


def test_requeue_dead_leaves_a_dead_letter_it_cannot_read_with_the_reason(
    worker, cli_env, redis_client
):
    _dead_letter_one(worker)
    worker.stop()
    _unreadable_dead_letter(redis_client, "llm.intent", "unreadable")

    done = run_cli(cli_env, "requeue-dead", "--queue", "llm.intent")
    assert done.returncode == 1
    assert "llm.intent: requeued 1" in done.stdout  # the readable one
    assert done.stderr == (
        "llm-worker: dead letter unreadable of llm.intent not requeued: it cannot be read "
        "(DecodeError: failed to decode message '{not a message'); it is still among the "
        "dead letters\n"
    )
    assert redis_client.zrange("dramatiq:llm.intent.XQ", 0, -1) == [b"unreadable"]
    assert redis_client.hkeys("dramatiq:llm.intent.XQ.msgs") == [b"unreadable"]
    assert redis_client.llen("dramatiq:llm.intent") == 1


def _unreadable_dead_letter(client, queue, redis_id):
    """A dead letter of ``queue`` whose payload is not a message, dead just now."""
    client.zadd(f"dramatiq:{queue}.XQ", {redis_id: int(time.time() * 1000)})
    client.hset(f"dramatiq:{queue}.XQ.msgs", redis_id, b"{not a message")


def test_probe(cli_env, fake_llm):
    ok = run_cli(cli_env, "probe")
    assert ok.returncode == 0 and "answered in" in ok.stdout
    fake_llm.down()
    down = run_cli(cli_env, "probe")
    assert down.returncode == 1 and "cannot reach the LLM" in down.stdout


def test_every_command_has_help_with_an_example(cli_env):
    commands = (
        "up",
        "dashboard",
        "status",
        "health",
        "send",
        "requeue-dead",
        "probe",
        "review",
        "usage",
    )
    for command in commands:
        shown = run_cli(cli_env, command, "--help")
        assert shown.returncode == 0
        assert "example: llm-worker" in shown.stdout or "example: DASHBOARD_USER" in shown.stdout


def _up(cli_env, tmp_path, *args, **env):
    log = (tmp_path / "up.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "console.cli", "up", *args],
        cwd=ROOT,
        env={**cli_env, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, tmp_path / "up.log", log


def _stop(process):
    """Stop an `up` that a failed test left running, children included (SIGTERM first)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def test_up_runs_a_job_and_stops_cleanly(cli_env, tmp_path, fake_llm, fake_core):
    fake_llm.answers["IntentResult"] = GOOD_REMINDER
    port, metrics_port = free_port(), free_port()
    process, log_path, log = _up(
        cli_env,
        tmp_path,
        "--processes",
        "1",
        "--threads",
        "2",
        DASHBOARD_PORT=str(port),
        METRICS_ENABLED="true",
        dramatiq_prom_port=str(metrics_port),
        dramatiq_prom_db=str(tmp_path / "prom"),
    )
    try:
        wait_for(lambda: "Worker process is ready" in log_path.read_text(), timeout=60)
        intent_classify.send(5, 42, {"text": "x"})
        wait_for(lambda: fake_core.job_updates(5), timeout=30)
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/"), timeout=30)
        # Metrics listen on loopback only under `up` (Dramatiq's own default is 0.0.0.0).
        assert wait_for(lambda: _listening(metrics_port), timeout=30) == ["127.0.0.1"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        _stop(process)
        log.close()
    output = log_path.read_text()
    assert output.startswith("[up] broker: Redis at")
    assert f"[up] metrics on http://127.0.0.1:{metrics_port}/metrics" in output
    assert "[up] LLM (openai at" in output and "answers in" in output
    for name in ("worker", "scheduler", "dashboard"):
        assert f"[{name}] " in output
    assert output.rstrip().endswith("[up] stopped")


def _listening(port: int) -> list[str]:
    """The IPv4 addresses with a socket listening on ``port`` (from /proc/net/tcp)."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.append(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def test_up_stops_everything_when_a_child_dies(cli_env, tmp_path):
    process, log_path, log = _up(
        cli_env, tmp_path, "--processes", "1", "--threads", "1", "--no-dashboard"
    )
    try:
        text = wait_for(
            lambda: re.search(r"started scheduler \(pid (\d+)\)", log_path.read_text()), timeout=60
        )
        wait_for(lambda: "Registered periodic actors" in log_path.read_text(), timeout=60)
        subprocess.run(["kill", "-KILL", text.group(1)], check=True)
        assert process.wait(timeout=60) == 1
    finally:
        _stop(process)
        log.close()
    assert "scheduler exited with code -9: stopping the others" in log_path.read_text()


def test_up_says_what_to_do_without_a_broker(cli_env, tmp_path):
    done = run_cli(cli_env, "up", REDIS_URL="redis://127.0.0.1:1/13")
    assert done.returncode == 2
    assert "is not answering" in done.stderr and "redis-server" in done.stderr


def test_metrics_after_a_job(start_worker, cli_env, fake_llm, fake_core, tmp_path):
    fake_llm.answers["IntentResult"] = GOOD_REMINDER
    port = free_port()
    start_worker(
        "--processes",
        "1",
        "--threads",
        "2",
        METRICS_ENABLED="true",
        dramatiq_prom_port=str(port),
        dramatiq_prom_db=str(tmp_path / "prom"),
    )
    intent_classify.send(11, 42, {"text": "x"})
    wait_for(lambda: fake_core.job_updates(11), timeout=30)

    text = wait_for(lambda: scrape_metrics(port, "llm_jobs_total"), timeout=30)
    labels = 'actor="intent_classify",model="mistral",outcome="ok",provider="openai"'
    assert f"llm_requests_total{{{labels}}} 1.0" in text
    assert f"llm_request_duration_seconds_count{{{labels}}} 1.0" in text
    assert (
        'llm_prompt_tokens_total{actor="intent_classify",model="mistral",provider="openai"} 11.0'
        in text
    )
    assert (
        'llm_completion_tokens_total{actor="intent_classify",model="mistral",provider="openai"} 7.0'
        in text
    )
    assert 'llm_jobs_total{actor="intent_classify",outcome="completed"} 1.0' in text
    assert (
        'dramatiq_messages_total{actor_name="intent_classify",queue_name="llm.intent"} 1.0' in text
    )


SECRET = "SECRET-CONTENT-8d1f"


def test_logs_never_show_user_content(
    start_worker, cli_env, fake_llm, fake_core, tmp_path, image_dir
):
    fake_llm.answers["IntentResult"] = GOOD_REMINDER
    start_worker("--processes", "1", "--threads", "2", "--verbose", LOG_FORMAT="json")
    intent_classify.send(21, 42, {"text": f"my password is {SECRET}"})
    send_unchecked(intent_classify, 22, 42, {"text": SECRET, "unknown": SECRET})
    produce_image = {"image_id": 1, "path": f"../{SECRET}.png"}
    from actors import image_tag

    image_tag.send(23, 42, produce_image)
    wait_for(lambda: len(fake_core.job_updates()) == 3, timeout=30)
    log = tmp_path / "worker0.log"
    wait_for(lambda: log_says(log, '"outcome"', count=3), timeout=30)

    output = log.read_text()
    assert SECRET not in output
    outcomes = {}
    for line in output.splitlines():
        if '"outcome"' in line:
            entry = json.loads(line[line.index("{") :])
            outcomes[entry["job_id"]] = entry["outcome"]
    assert outcomes == {21: "completed", 22: "failed", 23: "failed"}


def _answers(url):
    try:
        return requests.get(url, timeout=2).status_code in (200, 401)
    except requests.RequestException:
        return False


def test_dashboard_refuses_public_address_without_credentials(cli_env):
    done = run_cli(
        cli_env, "dashboard", "--host", "0.0.0.0", DASHBOARD_USER="", DASHBOARD_PASSWORD=""
    )
    assert done.returncode == 2
    assert "without DASHBOARD_USER and DASHBOARD_PASSWORD" in done.stderr


def _llm_checks(fake_llm) -> int:
    return sum(1 for r in fake_llm.requests if r["method"] == "GET")


def test_status_reports_whether_the_llm_answers_checked_once_per_interval(
    env, cli_env, fake_llm, redis_client
):
    env()
    first = run_cli(cli_env, "status", "--json", LLM_PROBE_INTERVAL_SECONDS="600")
    assert first.returncode == 0, first.stderr
    llm = json.loads(first.stdout)["llm"]
    assert llm["reachable"] is True and llm["url"] == f"{fake_llm.base_url}/models"
    again = run_cli(cli_env, "status", LLM_PROBE_INTERVAL_SECONDS="600")
    assert again.returncode == 0 and "answers (HTTP 200" in again.stdout
    assert _llm_checks(fake_llm) == 1  # the second status read the shared result

    redis_client.delete("llmw:llm:reachability")
    fake_llm.fallback = lambda request: Reply(status=503, body={"error": "overloaded"})
    overloaded = run_cli(cli_env, "status", LLM_PROBE_INTERVAL_SECONDS="600")
    assert overloaded.returncode == 1
    assert "NOT REACHABLE (answers HTTP 503" in overloaded.stdout
    assert "breaker: closed" in overloaded.stdout
    assert "the first job to call it will open the breaker" in overloaded.stdout

    fake_llm.fallback = lambda request: Reply(body={"data": []}, delay=5)  # hangs
    hung = run_cli(cli_env, "status", "--json", LLM_PROBE_INTERVAL_SECONDS="0.05")
    assert hung.returncode == 1
    assert json.loads(hung.stdout)["llm"]["detail"] == "timed out after 1s"

    fake_llm.down()
    time.sleep(0.1)
    refused = run_cli(cli_env, "status", "--json", LLM_PROBE_INTERVAL_SECONDS="0.05")
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["llm"]["detail"] == "connection refused"


def test_health_is_liveness_of_the_worker_processes(start_worker, cli_env, tmp_path):
    folder = tmp_path / "alive"
    live_env = {"LIVENESS_DIR": str(folder), "LLM_BASE_URL": "http://127.0.0.1:1/v1"}
    none = run_cli(cli_env, "health", **live_env)
    assert none.returncode == 1 and "no running worker process beats" in none.stdout

    # The LLM is unreachable: the worker still lives, so liveness passes.
    worker = start_worker("--processes", "2", "--threads", "1", **live_env)
    wait_for(lambda: len(list(folder.glob("worker-*"))) == 2, timeout=60)
    alive = run_cli(cli_env, "health", **live_env)
    assert alive.returncode == 0 and alive.stdout.startswith("alive: 2 worker processes")

    # A running process whose file is old has stopped beating.
    (folder / f"worker-{worker.pid}").write_text(f"{time.time() - 60}\n")
    stuck = run_cli(cli_env, "health", **live_env)
    assert stuck.returncode == 1 and f"worker process {worker.pid} stopped beating" in stuck.stdout

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert [p.name for p in folder.glob("worker-*")] == [f"worker-{worker.pid}"]
    gone = run_cli(cli_env, "health", **live_env)
    assert gone.returncode == 1 and "no running worker process beats" in gone.stdout


def _send(cli_env, actor, job_id, payload, wait, **env):
    return run_cli(
        cli_env,
        "send",
        actor,
        "--job-id",
        str(job_id),
        "--user-id",
        "42",
        "--payload",
        json.dumps(payload),
        "--wait",
        str(wait),
        **env,
    )


def _send_and_wait(cli_env, job_id, seconds, **env):
    return _send(cli_env, "intent_classify", job_id, {"text": "x"}, seconds, **env)


def test_send_wait_says_the_job_is_held_by_the_breaker(env, worker, cli_env, fake_llm):
    env(LLM_PROBE_INTERVAL_SECONDS=120)
    fake_llm.fallback = lambda request: Reply(status=503, body={"error": {"message": "loading"}})

    done = _send_and_wait(cli_env, 81, 3, LLM_PROBE_INTERVAL_SECONDS="120")

    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(
        "llm-worker: no notification for job 81 within 3s: the LLM is unavailable (breaker open"
    )
    assert "LLM answered HTTP 503: loading); the job is held in the broker" in line
    assert re.search(
        r"next probe in 1[01]\d\.\ds\); held back for \d+\.\ds, it expires in 1209\d{3}\.\ds$", line
    )


def test_send_wait_says_the_job_is_retrying_after_core_failed(
    env, worker, cli_env, fake_llm, fake_core
):
    settings = {
        "JOB_MAX_RETRIES": "3",
        "JOB_RETRY_MIN_BACKOFF_SECONDS": "60",
        "JOB_RETRY_MAX_BACKOFF_SECONDS": "120",
    }
    env(**settings)
    fake_llm.answers["IntentResult"] = GOOD_REMINDER
    fake_core.failures.extend([503] * 10)

    done = _send_and_wait(cli_env, 82, 3, **settings)

    assert done.returncode == 2
    assert ": the job is delayed, retrying after " in done.stderr
    assert "HTTP 503" in done.stderr
    assert re.search(r"attempt 2 of 4, next attempt in \d+\.\ds$", done.stderr.strip())


def test_send_wait_says_the_job_is_retrying_after_an_invalid_answer(env, worker, cli_env, fake_llm):
    env(LLM_RETRY_BACKOFF_SECONDS=60)
    fake_llm.answers["IntentResult"] = "not json"

    done = _send_and_wait(cli_env, 83, 3, LLM_RETRY_BACKOFF_SECONDS="60")

    assert done.returncode == 2
    assert re.search(
        r": the job is delayed, retrying after an invalid answer, attempt 2 of 6, "
        r"next attempt in \d+\.\ds$",
        done.stderr.strip(),
    )


def test_send_wait_says_the_llm_fails_the_jobs_request(env, worker, cli_env, fake_llm):
    env(LLM_PROBE_INTERVAL_SECONDS=120)

    def fails_jobs_not_probes(request):
        if request["json"].get("max_tokens") == 1:
            return Reply(content="pong")
        return Reply(status=500, body={"error": {"message": "decode failed"}})

    fake_llm.fallback = fails_jobs_not_probes

    done = _send_and_wait(cli_env, 85, 3, LLM_PROBE_INTERVAL_SECONDS="120")

    assert done.returncode == 2
    assert re.search(
        r": the job is delayed, retrying after the LLM failed its request while answering "
        r"probes \(1 of 3 server errors\), next attempt in 1[01]\d\.\ds$",
        done.stderr.strip(),
    )


def _start_ready(start_worker, tmp_path, **env):
    """One worker process of one thread, once it is ready."""
    start_worker("--processes", "1", "--threads", "1", **env)
    ready = lambda: "Worker process is ready" in (tmp_path / "worker0.log").read_text()  # noqa: E731
    wait_for(ready, timeout=60)


def test_send_wait_says_the_breaker_holds_the_job(start_worker, cli_env, redis_client, tmp_path):
    _start_ready(start_worker, tmp_path)
    BreakerStore(redis_client, "llmw", outage_retention=60).open(
        "cannot reach the LLM: connection refused", next_probe_at=time.time() + 300
    )

    done = _send(cli_env, "intent_classify", 31, {"text": "x"}, 3)

    assert done.returncode == 2
    assert "no notification for job 31 within 3s: the LLM is unavailable (breaker open since" in (
        done.stderr
    )
    assert "connection refused" in done.stderr and "held in the broker" in done.stderr


def test_send_wait_ends_when_a_job_completes_without_a_notification(
    start_worker, cli_env, fake_llm, fake_core, tmp_path
):
    fake_llm.answers["TaskMatchResult"] = {"task_id": None, "confidence": 0.1, "reason": "none"}
    _start_ready(start_worker, tmp_path)

    done = _send(cli_env, "task_match", 32, {"content": "buy milk"}, 60)

    assert done.returncode == 0, done.stderr
    assert (
        "job 32: the job completed without a notification (task_match notifies only a match)"
        in done.stdout
    )
    assert fake_core.job_updates(32)[0]["status"] == "completed"


def test_send_wait_says_core_refuses_the_report(env, worker, cli_env, fake_llm, fake_core):
    # The LLM refuses the request (HTTP 400): the job fails at once, and its report
    # meets a Core answering 503, retried in a minute.
    env(JOB_RETRY_MIN_BACKOFF_SECONDS=60, JOB_RETRY_MAX_BACKOFF_SECONDS=120)
    fake_llm.fallback = lambda request: Reply(status=400, body={"error": {"message": "no"}})
    fake_core.failures.extend([503] * 500)

    done = _send(cli_env, "intent_classify", 33, {"text": "x"}, 3)

    assert done.returncode == 2
    assert "the job failed, but Core has not accepted its report yet" in done.stderr
    assert "HTTP 503" in done.stderr and "the notification follows once Core does" in done.stderr


def test_job_state_sentences_for_ends_without_a_notification():
    from console.ops.job_state import JobState, explain
    from llm_worker.fleet.breaker import BreakerStatus

    closed = BreakerStatus("closed")
    dead = explain(JobState("report_dead", "failed", "Core answered HTTP 503"), closed, "followup")
    assert dead == (
        "the job failed, and Core refused its report JOB_MAX_RETRIES times (Core answered "
        "HTTP 503); `llm-worker requeue-dead` delivers it again"
    )
    stale = explain(JobState("finished", "skipped"), closed, "followup")
    assert stale == "the job was skipped"
    held = explain(JobState("queued"), BreakerStatus("open", 1.0, "HTTP 503", 2.0), "followup")
    assert held.startswith("the LLM is unavailable (breaker open since 00:00:01 UTC")


def test_a_producer_import_loads_no_llm_sdk(cli_env):
    code = (
        "import sys, actors; actors.intent_classify; "
        "print(sorted(m for m in ('openai', 'anthropic', 'pika') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=cli_env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_send_wait_says_no_worker_took_the_job(cli_env, redis_client):
    done = _send(cli_env, "followup", 35, {"text": "x"}, 2)

    assert done.returncode == 2
    assert done.stderr.startswith(
        "llm-worker: no notification for job 35 within 2s: the job is still queued: "
        "no worker has taken it"
    )


def test_status_exits_0_while_the_fallback_llm_serves_jobs(env, cli_env, fake_llm, redis_client):
    """The primary LLM down (its breaker open, its server refusing connections) with a
    fallback whose breaker is closed: jobs are served, so status says so and exits 0; with
    the fallback's breaker open too, nothing serves jobs: exit 1."""
    from llm_worker.testing.fakes import FakeLLM

    svc = env()
    fallback = FakeLLM()
    try:
        fallback_env = {"LLM_FALLBACK_BASE_URL": fallback.base_url}
        BreakerStore(svc.redis, "llmw", outage_retention=60).open(
            "connection refused", next_probe_at=time.time() + 30
        )
        fake_llm.down()
        served = run_cli(cli_env, "status", LLM_PROBE_INTERVAL_SECONDS="0.05", **fallback_env)
        assert served.returncode == 0, served.stdout + served.stderr
        assert "breaker: OPEN" in served.stdout and "serving: fallback" in served.stdout
        assert "primary LLM down: jobs are served by the fallback LLM" in served.stdout
        assert "jobs go to the fallback LLM until it answers" in served.stdout

        BreakerStore(svc.redis, "llmw", outage_retention=60, fallback=True).open(
            "connection refused", next_probe_at=time.time() + 30
        )
        none = run_cli(cli_env, "status", "--json", **fallback_env)
        assert none.returncode == 1
        assert json.loads(none.stdout)["serving"] == "none"
    finally:
        fallback.down()
        fake_llm.up()


def test_requeue_dead_runs_a_job_the_llm_failed_as_a_fresh_attempt(
    env, worker, cli_env, fake_llm, fake_core, redis_client
):
    env(LLM_PROBE_INTERVAL_SECONDS=0.1, LLM_REQUEST_MAX_SERVER_ERRORS=2)
    failures = [500, 500]  # the LLM fails the job's request twice, answering probes between

    def llm(request):
        if (request["json"] or {}).get("max_tokens") == 1:
            return Reply(content="pong")
        if failures:
            return Reply(status=failures.pop(), body={"error": {"message": "boom"}})
        return Reply(content=GOOD_REMINDER)

    fake_llm.fallback = llm
    intent_classify.send(80, 42, {"text": "x"})
    [failed] = wait_for(lambda: fake_core.job_updates(80), timeout=30)
    assert failed["error"].startswith("the LLM failed this request 2 times")
    wait_for(lambda: redis_client.zcard("dramatiq:llm.intent.XQ") == 1)

    failures.append(500)  # once more after the requeue: the first of a fresh attempt's errors
    done = run_cli(cli_env, "requeue-dead", "--queue", "llm.intent")
    assert done.returncode == 0, done.stderr
    wait_for(lambda: len(fake_core.job_updates(80)) == 2, timeout=30)

    assert fake_core.job_updates(80)[-1]["status"] == "completed"
    assert redis_client.zcard("dramatiq:llm.intent.XQ") == 0
