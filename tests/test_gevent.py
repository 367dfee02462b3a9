"""The worker under gevent (`dramatiq-gevent`): the core cases, with greenlets for threads."""

from __future__ import annotations

import re
import resource
import signal
import threading
import time
from pathlib import Path

import pytest

from llm_worker.testing.fakes import Reply
from tests.payloads import GOOD_REMINDER
from tests.support import llm_probes, notifications, produce, usage, wait_for

pytestmark = [pytest.mark.cli, pytest.mark.gevent]
pytest.importorskip("gevent")


def test_one_process_holds_many_llm_calls_in_flight_and_every_job_ends(
    start_worker, cli_env, fake_llm, fake_core, redis_client, tmp_path
):
    in_flight = 48
    all_there = threading.Barrier(in_flight, timeout=60)

    def answer_when_all_are_waiting(request):
        all_there.wait()  # breaks (and the test fails) unless 48 calls are open at once
        return Reply(content=GOOD_REMINDER)

    fake_llm.fallback = answer_when_all_are_waiting
    worker = start_worker(
        "--processes", "1", "--threads", "64", gevent=True, LLM_TOKENIZER="estimate"
    )
    produce(
        cli_env,
        "from actors import intent_classify\n"
        f"for n in range({in_flight}): intent_classify.send(n, 42, {{'text': 'x'}})\n"
        "from llm_worker.broker.outbound import send_message\n"
        "send_message('llm.intent', 'intent_classify', (900, 42, {'text': 5}), {})\n",
    )

    wait_for(lambda: len(fake_core.job_updates()) >= in_flight + 1, timeout=90)
    for n in range(in_flight):
        assert fake_core.job_updates(n) == [
            {"status": "completed", "result": GOOD_REMINDER, "error": None, "usage": usage(1)}
        ]
    [failed] = fake_core.job_updates(900)
    assert failed["status"] == "failed"
    assert "payload.text" in failed["error"]
    wait_for(lambda: len(notifications(redis_client)) >= in_flight + 1, timeout=10)
    kinds = sorted(n["message_type"] for n in notifications(redis_client))
    assert kinds == ["llm_failure"] + ["llm_intent_result"] * in_flight
    assert len(fake_llm.chat_requests()) == in_flight  # none for the malformed job

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    log = (tmp_path / "worker0.log").read_text()
    assert "Traceback" not in log


def test_outage_holds_jobs_and_a_probe_resumes_them(
    start_worker, cli_env, fake_llm, fake_core, redis_client
):
    interval = 0.5
    fake_llm.fallback = lambda request: Reply(status=503, body={"error": {"message": "down"}})
    start_worker(
        "--processes",
        "1",
        "--threads",
        "32",
        gevent=True,
        LLM_PROBE_INTERVAL_SECONDS=str(interval),
    )
    produce(
        cli_env,
        "from actors import intent_classify\n"
        "for n in range(100, 120): intent_classify.send(n, 42, {'text': 'x'})",
    )
    wait_for(lambda: redis_client.exists("llmw:breaker"), timeout=30)
    opened = time.time()
    time.sleep(4 * interval)
    wait_for(lambda: llm_probes(fake_llm), timeout=30)  # a busy machine may probe late
    requests = fake_llm.chat_requests()
    probes = [r for r in requests if r["json"].get("max_tokens") == 1]
    assert len(requests) - len(probes) <= 20  # at most one failing call per job in flight
    assert 1 <= len(probes) <= int((time.time() - opened) / interval) + 1
    assert fake_core.requests == []

    fake_llm.fallback = None
    fake_llm.answers["IntentResult"] = GOOD_REMINDER
    wait_for(lambda: len(fake_core.job_updates()) >= 20, timeout=60)
    time.sleep(1)
    assert sorted(r["path"] for r in fake_core.requests) == sorted(
        f"/jobs/{n}" for n in range(100, 120)
    )
    assert len(notifications(redis_client)) == 20


def test_time_limit_interrupts_a_hung_llm_call_and_the_job_fails(
    start_worker, cli_env, fake_llm, fake_core, redis_client
):
    fake_llm.fallback = lambda request: Reply(content=GOOD_REMINDER, delay=30)
    start_worker(
        "--processes",
        "1",
        "--threads",
        "8",
        gevent=True,
        LLM_TOKENIZER="estimate",
        LLM_TIMEOUT_SECONDS="60",
        JOB_MAX_RETRIES="0",
    )
    produce(
        cli_env,
        "from actors import intent_classify\n"
        "intent_classify.send_with_options(args=(7, 42, {'text': 'x'}), time_limit=1000)",
    )
    [update] = wait_for(lambda: fake_core.job_updates(7), timeout=20)
    assert update["status"] == "failed"
    assert update["error"] == "TimeLimitExceeded"
    assert not redis_client.exists("llmw:breaker")  # a time limit is not an LLM outage
    [note] = wait_for(lambda: notifications(redis_client), timeout=10)
    assert note["message_type"] == "llm_failure"


def test_up_gevent_runs_the_workers_with_greenlets(cli_env, tmp_path, fake_llm, fake_core):
    from actors import intent_classify
    from tests.test_operations import _stop, _up

    fake_llm.answers["IntentResult"] = GOOD_REMINDER
    process, log_path, log = _up(
        cli_env,
        tmp_path,
        "--gevent",
        "--processes",
        "1",
        "--threads",
        "16",
        "--no-scheduler",
        "--no-dashboard",
    )
    try:
        wait_for(lambda: "Worker process is ready" in log_path.read_text(), timeout=60)
        pid = re.search(r"started worker \(pid (\d+)\)", log_path.read_text()).group(1)
        assert b"gevent" in Path(f"/proc/{pid}/cmdline").read_bytes()  # dramatiq-gevent
        intent_classify.send(21, 42, {"text": "x"})
        wait_for(lambda: fake_core.job_updates(21), timeout=30)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        _stop(process)
        log.close()
    output = log_path.read_text()
    assert "[worker] " in output
    assert "Traceback" not in output
    assert fake_core.job_updates(21)[0]["status"] == "completed"


def test_a_worker_raises_its_open_files_limit_for_its_threads(start_worker, tmp_path):
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = 256
    worker = start_worker(
        "--processes",
        "1",
        "--threads",
        "300",
        gevent=True,
        preexec=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard)),
    )
    wait_for(lambda: "Worker process is ready" in (tmp_path / "worker0.log").read_text(), 60)
    [child] = [
        int(pid)
        for pid in Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    ]
    limits = Path(f"/proc/{child}/limits").read_text()
    [line] = [row for row in limits.splitlines() if row.startswith("Max open files")]
    assert int(line.split()[3]) == min(hard, 2 * 300 + 100)
