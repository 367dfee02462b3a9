"""The circuit breaker: what opens it, holding jobs back, probing and recovery."""

from __future__ import annotations

import json
import time

import pytest

from actors import intent_classify, task_match
from llm_worker.testing.fakes import Reply
from middleware import breaker_status
from tests.payloads import GOOD_TASK
from tests.support import (
    dead_letters,
    drain,
    free_port,
    jobs_completed,
    llm_job_calls,
    llm_probes,
    notifications,
    scrape_metrics,
    wait_for,
)


@pytest.mark.parametrize(
    "failure",
    [
        Reply(status=500, body={"error": {"message": "boom"}}),
        Reply(status=503, body={"error": {"message": "loading model"}}),
        Reply(status=529, body={"error": {"message": "overloaded"}}),
        Reply(status=401, body={"error": {"message": "bad key"}}),
        Reply(status=404, body={"error": {"message": "model 'mistral' not found"}}),
    ],
    ids=["500", "503", "529", "401", "404"],
)
def test_unavailable_answers_open_breaker_without_failing_the_job(
    env, worker, fake_llm, fake_core, failure
):
    env(LLM_PROBE_INTERVAL_SECONDS=0.3)
    fake_llm.fallback = lambda request: failure  # probes fail too until it recovers

    intent_classify.send(40, 42, {"text": "x"})
    status = wait_for(lambda: breaker_status() if breaker_status().is_open else None)
    assert str(failure.status) in status.last_error
    assert fake_core.job_updates(40) == []

    fake_llm.fallback = None  # the LLM recovers: the probe closes the breaker
    fake_llm.answers["IntentResult"] = GOOD_TASK
    wait_for(lambda: jobs_completed(fake_core, [40]))
    assert not breaker_status().is_open
    assert fake_core.job_updates(40)[0]["result"] == GOOD_TASK


def test_refused_connections_hold_jobs_until_llm_returns(env, worker, fake_llm, fake_core):
    max_age = 2.0
    env(LLM_PROBE_INTERVAL_SECONDS=0.3, MESSAGE_MAX_AGE_SECONDS=max_age)
    fake_llm.down()
    for job_id in range(50, 60):
        intent_classify.send(job_id, 42, {"text": "x"})
    wait_for(lambda: breaker_status().is_open)
    time.sleep(max_age + 0.5)  # older than MESSAGE_MAX_AGE_SECONDS: held jobs must not go stale
    assert fake_core.requests == []

    fake_llm.answers["IntentResult"] = GOOD_TASK
    fake_llm.up()
    wait_for(lambda: jobs_completed(fake_core, range(50, 60)), timeout=15)
    assert len(fake_core.job_updates()) == 10  # none skipped as stale, none run twice


def test_timeout_opens_breaker(env, worker, fake_llm, fake_core):
    env(LLM_TIMEOUT_SECONDS=0.3, LLM_PROBE_INTERVAL_SECONDS=0.3)
    fake_llm.fallback = lambda request: Reply(content=GOOD_TASK, delay=1.0)  # probes too

    intent_classify.send(41, 42, {"text": "x"})
    status = wait_for(lambda: breaker_status() if breaker_status().is_open else None)
    assert "timed out" in status.last_error

    fake_llm.fallback = None
    fake_llm.answers["IntentResult"] = GOOD_TASK
    wait_for(lambda: jobs_completed(fake_core, [41]))


def test_context_window_400_fails_job_and_keeps_breaker_closed(
    worker, fake_llm, fake_core, redis_client
):
    fake_llm.push(
        Reply(status=400, body={"error": {"message": "prompt exceeds the context window of 4096"}})
    )

    intent_classify.send(43, 42, {"text": "x" * 100})
    drain(worker, "llm.intent")

    [update] = fake_core.job_updates(43)
    assert update["status"] == "failed"
    assert "context window" in update["error"]
    assert not breaker_status().is_open
    assert [n["message_type"] for n in notifications(redis_client)] == ["llm_failure"]


def test_probes_are_rate_limited_during_outage(env, worker, fake_llm, fake_core):
    env(LLM_PROBE_INTERVAL_SECONDS=0.5)
    fake_llm.fallback = lambda request: Reply(status=502, body={"error": {"message": "bad gw"}})
    fake_core.tasks[42] = []
    for job_id in range(60, 80):
        task_match.send(job_id, 42, {"content": "note"})
    wait_for(lambda: breaker_status().is_open)
    opened = time.time()
    time.sleep(2.0)
    wait_for(lambda: llm_probes(fake_llm), timeout=30)  # a busy machine may probe late

    probes = llm_probes(fake_llm)
    assert 1 <= len(probes) <= int((time.time() - opened) / 0.5) + 1
    assert len(llm_job_calls(fake_llm)) <= 4  # only calls already in flight when it opened

    fake_llm.fallback = None
    fake_llm.answers["TaskMatchResult"] = {"task_id": None, "confidence": 0.1, "reason": "-"}
    wait_for(lambda: jobs_completed(fake_core, range(60, 80)), timeout=15)


def _fails_one_request_shape(request):
    """A healthy LLM that answers 500 to every request whose prompt holds ``POISON``."""
    body = request["json"] or {}
    if "POISON" in json.dumps(body.get("messages")):
        return Reply(status=500, body={"error": {"message": "failed to decode the batch"}})
    name = ((body.get("response_format") or {}).get("json_schema") or {}).get("name")
    return Reply(content=GOOD_TASK if name == "IntentResult" else "pong")


def test_a_request_the_llm_always_fails_fails_its_job_only(
    start_worker, cli_env, fake_llm, fake_core, redis_client, tmp_path
):
    fake_llm.fallback = _fails_one_request_shape
    port = free_port()
    start_worker(
        "--processes",
        "1",
        "--threads",
        "2",
        LLM_PROBE_INTERVAL_SECONDS="0.3",
        METRICS_ENABLED="true",
        dramatiq_prom_port=str(port),
        dramatiq_prom_db=str(tmp_path / "prom"),
    )

    intent_classify.send(60, 42, {"text": "POISON"})
    for job_id in range(61, 66):
        intent_classify.send(job_id, 42, {"text": f"healthy {job_id}"})
    wait_for(lambda: jobs_completed(fake_core, range(61, 66)), timeout=60)
    [update] = wait_for(lambda: fake_core.job_updates(60), timeout=60)

    assert update["status"] == "failed"
    assert update["error"].startswith("the LLM failed this request 3 times, answering probes")
    assert "LLM answered HTTP 500: failed to decode the batch" in update["error"]
    poisoned = [r for r in llm_job_calls(fake_llm) if "POISON" in json.dumps(r["json"]["messages"])]
    assert len(poisoned) == 3  # LLM_REQUEST_MAX_SERVER_ERRORS
    assert len(llm_probes(fake_llm)) == 3  # each error was followed by a successful probe
    assert redis_client.zcard("llmw:outages") == 0  # the breaker never opened
    [note] = wait_for(lambda: [n for n in notifications(redis_client) if n["job_id"] == 60])
    assert note["message_type"] == "llm_failure"
    # the worker process dead-letters the message after its hooks notified the user
    assert len(wait_for(lambda: dead_letters(redis_client, "llm.intent"))) == 1
    assert not breaker_status().is_open

    intent_classify.send(66, 42, {"text": "after"})  # the others carry on, no breaker
    wait_for(lambda: jobs_completed(fake_core, [66]), timeout=30)
    assert not breaker_status().is_open
    text = wait_for(lambda: scrape_metrics(port, "llm_failing_requests_total{"), timeout=30)
    assert 'llm_failing_requests_total{actor="intent_classify"} 1.0' in text


def test_a_request_that_fails_less_often_completes(env, worker, fake_llm, fake_core, redis_client):
    env(LLM_PROBE_INTERVAL_SECONDS=0.2)
    failures = iter(range(2))

    def fails_twice(request):
        body = request["json"] or {}
        if body.get("max_tokens") != 1 and next(failures, None) is not None:
            return Reply(status=500, body={"error": {"message": "boom"}})
        return _fails_one_request_shape(request)

    fake_llm.fallback = fails_twice
    intent_classify.send(67, 42, {"text": "x"})

    wait_for(lambda: jobs_completed(fake_core, [67]), timeout=30)
    assert len(llm_job_calls(fake_llm)) == 3
    assert len(llm_probes(fake_llm)) == 2
    assert not breaker_status().is_open
    assert fake_core.job_updates(67)[0]["result"] == GOOD_TASK
    assert redis_client.zcard("llmw:outages") == 0
