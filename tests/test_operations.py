"""Operating the worker: llm-worker commands, the dashboard in Chromium, metrics, logs."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import requests

from actors import broker, intent_classify
from llm_worker.breaker import BreakerStore
from llm_worker.message_options import HELD_SINCE
from tests.conftest import ROOT, drain, notifications, run_cli, send_unchecked, wait_for

pytestmark = pytest.mark.cli
GOOD = {"intent": "reminder", "confidence": 0.9}
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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

    down = run_cli(cli_env, "status", REDIS_URL="redis://127.0.0.1:1/13")
    assert down.returncode == 2
    assert down.stderr.startswith("llm-worker: Redis at redis://127.0.0.1:1/13 is not answering")


def test_send_waits_for_the_notification(start_worker, cli_env, fake_llm, fake_core):
    fake_llm.answers["IntentResult"] = GOOD
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
        "content": GOOD,
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
    fake_llm.answers["IntentResult"] = GOOD
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
    fake_llm.answers["IntentResult"] = GOOD
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


def test_probe(cli_env, fake_llm):
    ok = run_cli(cli_env, "probe")
    assert ok.returncode == 0 and "answered in" in ok.stdout
    fake_llm.down()
    down = run_cli(cli_env, "probe")
    assert down.returncode == 1 and "cannot reach the LLM" in down.stdout


def test_every_command_has_help_with_an_example(cli_env):
    for command in ("up", "dashboard", "status", "send", "requeue-dead", "probe", "review"):
        shown = run_cli(cli_env, command, "--help")
        assert shown.returncode == 0
        assert "example: llm-worker" in shown.stdout or "example: DASHBOARD_USER" in shown.stdout


def _up(cli_env, tmp_path, *args, **env):
    log = (tmp_path / "up.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "llm_worker.cli", "up", *args],
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
    fake_llm.answers["IntentResult"] = GOOD
    port = free_port()
    process, log_path, log = _up(
        cli_env, tmp_path, "--processes", "1", "--threads", "2", DASHBOARD_PORT=str(port)
    )
    try:
        wait_for(lambda: "Worker process is ready" in log_path.read_text(), timeout=60)
        intent_classify.send(5, 42, {"text": "x"})
        wait_for(lambda: fake_core.job_updates(5), timeout=30)
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/"), timeout=30)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        _stop(process)
        log.close()
    output = log_path.read_text()
    assert output.startswith("[up] broker: Redis at")
    assert "[up] LLM (openai at" in output and "answers in" in output
    for name in ("worker", "scheduler", "dashboard"):
        assert f"[{name}] " in output
    assert output.rstrip().endswith("[up] stopped")


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
    fake_llm.answers["IntentResult"] = GOOD
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

    def scrape():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
                text = reply.read().decode()
        except OSError:
            return None
        return text if "llm_jobs_total" in text else None

    text = wait_for(scrape, timeout=30)
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
    fake_llm.answers["IntentResult"] = GOOD
    start_worker("--processes", "1", "--threads", "2", "--verbose", LOG_FORMAT="json")
    intent_classify.send(21, 42, {"text": f"my password is {SECRET}"})
    send_unchecked(intent_classify, 22, 42, {"text": SECRET, "unknown": SECRET})
    produce_image = {"image_id": 1, "path": f"../{SECRET}.png"}
    from actors import image_tag

    image_tag.send(23, 42, produce_image)
    wait_for(lambda: len(fake_core.job_updates()) == 3, timeout=30)
    time.sleep(1)

    output = (tmp_path / "worker0.log").read_text()
    assert SECRET not in output
    outcomes = {}
    for line in output.splitlines():
        if '"outcome"' in line:
            entry = json.loads(line[line.index("{") :])
            outcomes[entry["job_id"]] = entry["outcome"]
    assert outcomes == {21: "completed", 22: "failed", 23: "failed"}


def test_dashboard_in_a_browser(env, worker, cli_env, tmp_path, redis_client):
    _dead_letter_one(worker)
    worker.stop()
    for n in range(3):
        intent_classify.send(n, 42, {"text": "x"})
    port = free_port()
    dashboard = subprocess.Popen(
        [sys.executable, "-m", "llm_worker.cli", "dashboard", "--port", str(port)],
        cwd=ROOT,
        env={**cli_env, "DASHBOARD_USER": "ops", "DASHBOARD_PASSWORD": "s3cret"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for(lambda: _answers(url), timeout=30)
        assert requests.get(url, timeout=5).status_code == 401
        assert requests.get(url, auth=("ops", "wrong"), timeout=5).status_code == 401
        authed = f"http://ops:s3cret@127.0.0.1:{port}/"
        dom = _chromium(tmp_path, "--dump-dom", authed).stdout
        ARTIFACTS.mkdir(exist_ok=True)
        _chromium(
            tmp_path,
            "--window-size=1280,800",
            f"--screenshot={ARTIFACTS / 'dashboard.png'}",
            authed,
        )
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)
    cells = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))
    for queue in ("llm.intent", "llm.image_tag", "llm.review", "llm.sweep"):
        assert queue in cells
    assert re.search(r"llm\.intent 3 0 1", cells)
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000


def _answers(url):
    try:
        return requests.get(url, timeout=2).status_code in (200, 401)
    except requests.RequestException:
        return False


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )


def test_dashboard_refuses_public_address_without_credentials(cli_env):
    done = run_cli(
        cli_env, "dashboard", "--host", "0.0.0.0", DASHBOARD_USER="", DASHBOARD_PASSWORD=""
    )
    assert done.returncode == 2
    assert "without DASHBOARD_USER and DASHBOARD_PASSWORD" in done.stderr
