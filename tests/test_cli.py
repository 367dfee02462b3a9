"""The real ``dramatiq actors`` CLI in subprocesses, with producers in other processes."""

from __future__ import annotations

import signal
import time

import pytest

from llm_worker.testing.fakes import Reply
from tests.payloads import GOOD_REMINDER
from tests.support import llm_probes, notifications, produce, usage, wait_for

pytestmark = pytest.mark.cli


def test_worker_cli_runs_job_sent_by_another_process(
    start_worker, cli_env, fake_llm, fake_core, redis_client
):
    fake_llm.answers["IntentResult"] = GOOD_REMINDER
    worker = start_worker("--processes", "1", "--threads", "2")

    produce(
        cli_env,
        "from actors import intent_classify\n"
        "intent_classify.send(1, 42, {'text': 'remind me to call mum at 6'})",
    )

    wait_for(lambda: fake_core.job_updates(1), timeout=30)
    assert fake_core.job_updates(1) == [
        {"status": "completed", "result": GOOD_REMINDER, "error": None, "usage": usage(1)}
    ]
    wait_for(lambda: notifications(redis_client), timeout=10)
    [note] = notifications(redis_client)
    assert note == {
        "user_id": 42,
        "job_id": 1,
        "message_type": "llm_intent_result",
        "content": GOOD_REMINDER,
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
    start_worker, cli_env, fake_llm, fake_core, redis_client, tmp_path
):
    interval = 0.5
    fake_llm.fallback = lambda request: Reply(status=503, body={"error": {"message": "down"}})
    start_worker("--processes", "2", "--threads", "2", LLM_PROBE_INTERVAL_SECONDS=str(interval))
    log_path = tmp_path / "worker0.log"
    wait_for(lambda: log_path.read_text().count("Worker process is ready") == 2, timeout=90)
    produce(
        cli_env,
        "from actors import intent_classify\n"
        "for n in range(100, 130): intent_classify.send(n, 42, {'text': 'x'})",
    )
    wait_for(lambda: redis_client.exists("llmw:breaker"), timeout=30)
    opened = time.time()
    time.sleep(4 * interval)
    wait_for(lambda: llm_probes(fake_llm), timeout=30)  # a busy machine may probe late

    requests = fake_llm.chat_requests()
    probes = [r for r in requests if r["json"].get("max_tokens") == 1]
    job_calls = [r for r in requests if r["json"].get("max_tokens") != 1]
    assert len(job_calls) <= 4  # at most one failing call per worker thread
    assert 1 <= len(probes) <= int((time.time() - opened) / interval) + 1
    assert fake_core.requests == []

    fake_llm.fallback = None
    fake_llm.answers["IntentResult"] = GOOD_REMINDER
    wait_for(lambda: len(fake_core.job_updates()) >= 30, timeout=60)
    time.sleep(1)
    updates = [r["path"] for r in fake_core.requests]
    assert sorted(updates) == sorted(f"/jobs/{n}" for n in range(100, 130))
    assert len(notifications(redis_client)) == 30

    # The operator's log: one line per event, none of Dramatiq's routine lines.
    log = log_path.read_text()
    assert "breaker opened for all workers" in log
    assert "breaker closed after" in log
    assert "job held: actor=intent_classify" in log
    assert "was skipped" not in log
    assert "Restarting consumer" not in log
