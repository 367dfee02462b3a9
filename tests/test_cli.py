"""The real ``dramatiq actors`` CLI in subprocesses, with producers in other processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_REDIS_URL, notifications, usage, wait_for
from tests.fakes import Reply

pytestmark = pytest.mark.cli
ROOT = Path(__file__).resolve().parent.parent
GOOD = {"intent": "reminder", "confidence": 0.9}


@pytest.fixture
def cli_env(env, fake_llm, fake_core, image_dir) -> dict[str, str]:
    return {
        **os.environ,
        "REDIS_URL": TEST_REDIS_URL,
        "LLM_BASE_URL": fake_llm.base_url,
        "CORE_API_URL": fake_core.url,
        "IMAGE_STORAGE_PATH": str(image_dir),
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture
def start_worker(cli_env, tmp_path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    logs = []

    def start(*args: str, **env: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"worker{len(started)}.log").open("wb")
        logs.append(log)
        process = subprocess.Popen(
            [sys.executable, "-m", "dramatiq", "actors", *args],
            cwd=ROOT,
            env={**cli_env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    for log in logs:
        log.close()


def produce(cli_env: dict[str, str], code: str) -> None:
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=cli_env, check=True, timeout=60)


def test_worker_cli_runs_job_sent_by_another_process(
    start_worker, cli_env, fake_llm, fake_core, redis_client
):
    fake_llm.answers["IntentResult"] = GOOD
    worker = start_worker("--processes", "1", "--threads", "2")

    produce(
        cli_env,
        "from actors import intent_classify\n"
        "intent_classify.send(1, 42, {'text': 'remind me to call mum at 6'})",
    )

    wait_for(lambda: fake_core.job_updates(1), timeout=30)
    assert fake_core.job_updates(1) == [
        {"status": "completed", "result": GOOD, "error": None, "usage": usage(1)}
    ]
    wait_for(lambda: notifications(redis_client), timeout=10)
    [note] = notifications(redis_client)
    assert note == {
        "user_id": 42,
        "job_id": 1,
        "message_type": "llm_intent_result",
        "content": GOOD,
    }

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0


def test_invalid_setting_stops_the_worker_with_one_line(start_worker, tmp_path):
    worker = start_worker("--processes", "1", "--threads", "1", LLM_TIMEOUT_SECONDS="soon")

    assert worker.wait(timeout=30) != 0
    output = (tmp_path / "worker0.log").read_text()
    assert "llm-worker: invalid setting LLM_TIMEOUT_SECONDS: " in output
    assert "Traceback" not in output


def test_outage_with_two_processes_probes_once_per_interval_and_loses_nothing(
    start_worker, cli_env, fake_llm, fake_core, redis_client
):
    fake_llm.fallback = lambda request: Reply(status=503, body={"error": {"message": "down"}})
    start_worker("--processes", "2", "--threads", "2", LLM_PROBE_INTERVAL_SECONDS="1")
    produce(
        cli_env,
        "from actors import intent_classify\n"
        "for n in range(100, 130): intent_classify.send(n, 42, {'text': 'x'})",
    )
    wait_for(lambda: redis_client.exists("llmw:breaker"), timeout=30)
    opened = time.time()
    time.sleep(4)

    requests = fake_llm.chat_requests()
    probes = [r for r in requests if r["json"].get("max_tokens") == 1]
    job_calls = [r for r in requests if r["json"].get("max_tokens") != 1]
    assert len(job_calls) <= 4  # at most one failing call per worker thread
    assert 1 <= len(probes) <= int(time.time() - opened) + 1
    assert fake_core.requests == []

    fake_llm.fallback = None
    fake_llm.answers["IntentResult"] = GOOD
    wait_for(lambda: len(fake_core.job_updates()) >= 30, timeout=60)
    time.sleep(1)
    updates = [r["path"] for r in fake_core.requests]
    assert sorted(updates) == sorted(f"/jobs/{n}" for n in range(100, 130))
    assert len(notifications(redis_client)) == 30
