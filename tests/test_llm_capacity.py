"""Fleet-wide capacity with real workers: the cap, waiting, 429 cooldowns, priority, fallback."""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Iterator

import pytest

from actors import intent_classify, task_match
from llm_worker.fleet.capacity import CapacityLimits, CapacityStore
from llm_worker.testing.fakes import FakeLLM, Reply
from middleware import breaker_status
from tests.payloads import GOOD_TASK
from tests.support import (
    free_port,
    http_date,
    jobs_completed,
    llm_job_calls,
    llm_probes,
    run_cli,
    scrape_metrics,
    wait_for,
)

NO_MATCH = {"task_id": None, "confidence": 0.1, "reason": "-"}


def _patched_at(fake_core, job_id) -> float:
    return next(
        r["at"]
        for r in fake_core.requests
        if r["method"] == "PATCH" and r["path"] == f"/jobs/{job_id}"
    )


def _busy(retry_after: str | None) -> Reply:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Reply(status=429, body={"error": {"message": "rate limited"}}, headers=headers)


def test_the_cap_keeps_the_llm_under_its_limit(env, worker, fake_llm, fake_core):
    env(LLM_MAX_CONCURRENT_REQUESTS=2)
    fake_llm.concurrency_limit = 2  # answers 429 above 2 at once
    fake_llm.fallback = lambda request: Reply(content=GOOD_TASK, delay=0.2)
    jobs = range(100, 112)
    for job_id in jobs:
        intent_classify.send(job_id, 42, {"text": "x"})
    wait_for(lambda: jobs_completed(fake_core, jobs), timeout=30)

    assert fake_llm.peak_in_flight <= 2
    assert fake_llm.busy_answers == 0
    assert [u["usage"]["attempts"] for u in fake_core.job_updates()] == [1] * len(jobs)
    assert not breaker_status().is_open


def test_without_a_cap_429s_cool_the_fleet_down_and_never_open_the_breaker(
    env, worker, fake_llm, fake_core, redis_client
):
    env(LLM_PROBE_INTERVAL_SECONDS=0.2)
    fake_llm.concurrency_limit = 1
    fake_llm.busy_reply = _busy("0.3")
    fake_llm.fallback = lambda request: Reply(content=GOOD_TASK, delay=0.2)
    jobs = range(110, 118)
    for job_id in jobs:
        intent_classify.send(job_id, 42, {"text": "x"})
    wait_for(lambda: jobs_completed(fake_core, jobs), timeout=30)

    assert fake_llm.busy_answers > 0
    assert llm_probes(fake_llm) == []
    assert redis_client.zcard("llmw:outages") == 0  # the breaker never opened
    assert len(fake_core.job_updates()) == len(jobs)


def test_a_429_cooldown_honours_retry_after(env, worker, fake_llm, fake_core, redis_client):
    fake_llm.push(_busy("1"))
    fake_llm.answers["IntentResult"] = GOOD_TASK
    intent_classify.send(120, 42, {"text": "x"})
    cooldown = wait_for(lambda: redis_client.pttl("llmw:capacity:cooldown") > 0, timeout=10)
    assert cooldown
    wait_for(lambda: jobs_completed(fake_core, [120]), timeout=10)

    first, second = llm_job_calls(fake_llm)
    assert second["at"] - first["at"] >= 0.95  # nothing called the LLM during the cooldown
    assert not breaker_status().is_open and llm_probes(fake_llm) == []
    assert fake_core.job_updates(120)[0]["usage"]["attempts"] == 1


@pytest.mark.parametrize(
    ("retry_after", "least_gap"),
    [
        ("86400", 0.45),  # one day: cut to LLM_RETRY_AFTER_MAX_SECONDS
        ("1e400", 0.45),  # infinite: the same
        (http_date(86400), 0.45),  # a date a day away: the same
        ("-5", 0.25),  # invalid: LLM_COOLDOWN_SECONDS
        ("whenever", 0.25),  # garbage: the same
        (None, 0.25),  # absent: the same
        (http_date(-3600), 0.0),  # a date past: no wait
    ],
    ids=["day", "inf", "date-ahead", "negative", "garbage", "absent", "date-past"],
)
def test_odd_retry_after_values_are_honoured_within_the_cap(
    env, worker, fake_llm, fake_core, retry_after, least_gap
):
    env(LLM_RETRY_AFTER_MAX_SECONDS=0.5, LLM_COOLDOWN_SECONDS=0.3)
    fake_llm.push(_busy(retry_after))
    fake_llm.answers["IntentResult"] = GOOD_TASK
    intent_classify.send(121, 42, {"text": "x"})
    wait_for(lambda: jobs_completed(fake_core, [121]), timeout=10)

    first, second = llm_job_calls(fake_llm)
    assert second["at"] - first["at"] >= least_gap
    assert not breaker_status().is_open


def test_a_huge_retry_after_on_503_delays_the_probe_by_the_cap_only(
    env, worker, fake_llm, fake_core
):
    env(LLM_RETRY_AFTER_MAX_SECONDS=1, LLM_PROBE_INTERVAL_SECONDS=0.2)
    down = Reply(
        status=503, body={"error": {"message": "maintenance"}}, headers={"Retry-After": "86400"}
    )
    fake_llm.fallback = lambda request: down
    intent_classify.send(122, 42, {"text": "x"})
    status = wait_for(lambda: breaker_status() if breaker_status().is_open else None)
    assert 0.9 <= status.next_probe_at - status.since <= 1.1

    fake_llm.fallback = None
    fake_llm.answers["IntentResult"] = GOOD_TASK
    wait_for(lambda: jobs_completed(fake_core, [122]), timeout=10)


def test_waiting_for_capacity_is_never_a_retry_and_never_makes_a_job_stale(
    env, worker, fake_llm, fake_core, caplog
):
    # No ordinary retry is allowed, jobs go stale after 1 s, and the backlog lasts longer:
    # a wait counted as a retry, or checked for staleness, would fail or skip jobs.
    env(
        LLM_MAX_CONCURRENT_REQUESTS=1,
        LLM_CAPACITY_WAIT_SECONDS=0,
        JOB_MAX_RETRIES=0,
        MESSAGE_MAX_AGE_SECONDS=1,
    )
    fake_llm.concurrency_limit = 1
    fake_llm.fallback = lambda request: Reply(content=GOOD_TASK, delay=0.3)
    jobs = range(130, 138)
    caplog.set_level(logging.INFO, logger="middleware.llm_capacity")
    for job_id in jobs:
        intent_classify.send(job_id, 42, {"text": "x"})
    wait_for(lambda: jobs_completed(fake_core, jobs), timeout=30)

    updates = fake_core.job_updates()
    assert len(updates) == len(jobs)
    assert {u["status"] for u in updates} == {"completed"}
    assert {u["usage"]["attempts"] for u in updates} == {1}
    assert fake_llm.peak_in_flight == 1 and fake_llm.busy_answers == 0
    assert any("for LLM capacity (slots)" in r.getMessage() for r in caplog.records)


def test_an_interactive_job_overtakes_the_batch_backlog(env, worker, fake_llm, fake_core):
    env(LLM_MAX_CONCURRENT_REQUESTS=1)
    fake_llm.fallback = lambda request: Reply(
        content=GOOD_TASK if "IntentResult" in str(request["json"]) else NO_MATCH, delay=0.25
    )
    fake_core.tasks[42] = []
    batch = range(140, 152)
    for job_id in batch:
        task_match.send(job_id, 42, {"content": "note"})
    wait_for(lambda: fake_core.job_updates(), timeout=10)  # the backlog is running
    intent_classify.send(152, 42, {"text": "x"})
    wait_for(lambda: jobs_completed(fake_core, [*batch, 152]), timeout=30)

    intent_done = _patched_at(fake_core, 152)
    before = [job_id for job_id in batch if _patched_at(fake_core, job_id) < intent_done]
    assert len(before) <= 4  # not after the 12-job backlog: right after the call in flight


@pytest.fixture
def fallback_llm() -> Iterator[FakeLLM]:
    server = FakeLLM()
    yield server
    server.down()


def test_the_fallback_serves_while_the_primary_is_down_and_hands_back(
    env, worker, fake_llm, fallback_llm, fake_core
):
    env(
        LLM_FALLBACK_BASE_URL=fallback_llm.base_url,
        LLM_FALLBACK_TEXT_MODEL="small",
        LLM_PROBE_INTERVAL_SECONDS=0.3,
    )
    fake_llm.fallback = lambda request: Reply(status=503, body={"error": {"message": "down"}})
    fallback_llm.answers["IntentResult"] = GOOD_TASK
    intent_classify.send(160, 42, {"text": "x"})
    wait_for(lambda: jobs_completed(fake_core, [160]), timeout=10)
    usage = fake_core.job_updates(160)[0]["usage"]
    assert (usage["model"], usage["served_by"]) == ("small", "fallback")
    assert llm_job_calls(fallback_llm)[0]["json"]["model"] == "small"

    intent_classify.send(161, 42, {"text": "x"})  # the primary is still down: straight there
    wait_for(lambda: jobs_completed(fake_core, [161]), timeout=10)
    assert fake_core.job_updates(161)[0]["usage"]["served_by"] == "fallback"
    wait_for(lambda: llm_probes(fake_llm))  # the primary is still probed
    assert breaker_status().is_open

    fake_llm.fallback = None  # the primary recovers: its probe closes its breaker
    fake_llm.answers["IntentResult"] = GOOD_TASK
    wait_for(lambda: not breaker_status().is_open, timeout=10)
    fallback_calls = len(llm_job_calls(fallback_llm))
    intent_classify.send(162, 42, {"text": "x"})
    wait_for(lambda: jobs_completed(fake_core, [162]), timeout=10)
    usage = fake_core.job_updates(162)[0]["usage"]
    assert (usage["model"], usage["served_by"]) == ("mistral", "primary")
    assert len(llm_job_calls(fallback_llm)) == fallback_calls


def test_with_both_down_jobs_are_held_until_one_returns(
    env, worker, fake_llm, fallback_llm, fake_core, redis_client
):
    env(LLM_FALLBACK_BASE_URL=fallback_llm.base_url, LLM_PROBE_INTERVAL_SECONDS=0.3)
    down = Reply(status=503, body={"error": {"message": "down"}})
    fake_llm.fallback = lambda request: down
    fallback_llm.fallback = lambda request: down
    for job_id in range(170, 174):
        intent_classify.send(job_id, 42, {"text": "x"})
    wait_for(lambda: redis_client.exists("llmw:breaker", "llmw:breaker:fallback") == 2)
    time.sleep(1.0)
    assert fake_core.job_updates() == []

    fallback_llm.fallback = None  # the fallback returns first: it takes the held jobs
    fallback_llm.answers["IntentResult"] = GOOD_TASK
    wait_for(lambda: jobs_completed(fake_core, range(170, 174)), timeout=15)
    assert {u["usage"]["served_by"] for u in fake_core.job_updates()} == {"fallback"}
    assert breaker_status().is_open


@pytest.mark.timeout(120)
def test_a_killed_workers_slots_return_within_the_lease(
    start_worker, fake_llm, fake_core, redis_client, tmp_path
):
    fake_llm.fallback = lambda request: Reply(content=GOOD_TASK, delay=30)
    lease = 2.0
    limits = {"LLM_MAX_CONCURRENT_REQUESTS": "4", "LLM_SLOT_LEASE_SECONDS": str(lease)}
    cli = start_worker("--processes", "1", "--threads", "2", **limits)
    wait_for(lambda: "Worker process is ready" in (tmp_path / "worker0.log").read_text(), 60)
    store = CapacityStore(redis_client, "llmw", CapacityLimits(max_concurrent=4))
    intent_classify.send(180, 42, {"text": "x"})
    intent_classify.send(181, 42, {"text": "x"})
    wait_for(lambda: store.snapshot().slots_in_use == 2, timeout=30)
    time.sleep(lease * 1.5)  # past the first lease: the live holder renews it
    assert store.snapshot().slots_in_use == 2

    child = subprocess.run(["pgrep", "-P", str(cli.pid)], capture_output=True, text=True)
    for pid in child.stdout.split():
        subprocess.run(["kill", "-KILL", pid], check=False)
    killed = time.monotonic()
    wait_for(lambda: store.snapshot().slots_in_use == 0, timeout=lease + 2)
    assert time.monotonic() - killed <= lease + 2
    cli.wait(timeout=30)


def test_status_shows_the_fleets_capacity(cli_env, redis_client):
    limits = CapacityLimits(max_concurrent=3, requests_per_minute=600)
    store = CapacityStore(redis_client, "llmw", limits)
    for lease in ("a", "b"):
        assert store.acquire(lease, priority=0, tokens=50).granted
    store.cool_down(30, "LLM answered HTTP 429: slow down")
    settings = {"LLM_MAX_CONCURRENT_REQUESTS": "3", "LLM_REQUESTS_PER_MINUTE": "600"}

    done = run_cli(cli_env, "status", "--json", **settings)
    status = json.loads(done.stdout)
    capacity = status["capacity"]
    assert (capacity["slots_in_use"], capacity["max_concurrent"]) == (2, 3)
    assert (capacity["requests_last_minute"], capacity["tokens_last_minute"]) == (2, 100)
    assert capacity["requests_per_minute_limit"] == 600
    assert "429" in capacity["cooldown"]["reason"]
    assert status["serving"] == "primary"
    assert done.returncode == 0  # a cooldown is not an outage

    text = run_cli(cli_env, "status", **settings).stdout
    assert "LLM slots in use: 2 of 3" in text
    assert "cooldown after a 429: " in text and "slow down" in text


def test_capacity_metrics_and_tokens_corrected_by_usage(
    start_worker, fake_llm, fake_core, tmp_path
):
    fake_llm.fallback = lambda request: Reply(content=GOOD_TASK, delay=3.0)
    port = free_port()
    start_worker(
        "--processes",
        "1",
        "--threads",
        "2",
        METRICS_ENABLED="true",
        dramatiq_prom_port=str(port),
        dramatiq_prom_db=str(tmp_path / "prom"),
        LLM_MAX_CONCURRENT_REQUESTS="3",
        LLM_TOKENS_PER_MINUTE="60000",
        LLM_TOKENIZER="estimate",
    )

    intent_classify.send(190, 42, {"text": "x"})
    text = wait_for(lambda: scrape_metrics(port, "llm_slots_in_use 1.0"), timeout=30)
    assert "llm_slots_limit 3.0" in text and "llm_tokens_per_minute_limit 60000.0" in text
    wait_for(lambda: jobs_completed(fake_core, [190]), timeout=30)
    # The prompt's estimate was charged, then corrected to the 11 + 7 tokens the LLM reported.
    wait_for(
        lambda: scrape_metrics(port, "llm_slots_in_use 0.0", "llm_tokens_last_minute 18.0"),
        timeout=30,
    )
