"""What each job cost: priced from LLM_PRICES_FILE, summed over its attempts, sent to Core,
counted per hour by user, job type and model, and read back by ``llm-worker usage``."""

from __future__ import annotations

import json
import subprocess
import sys

import dramatiq
import pytest

from actors import followup, intent_classify
from llm_worker.jobs.costs import call_user
from llm_worker.testing.fakes import Reply
from tests.support import ROOT, drain, free_port, run_cli, scrape_metrics, wait_for

GOOD_INTENT = {"intent": "task", "confidence": 0.9}
#: Dollars per million tokens, large so that a few test calls reach whole cents.
MISTRAL = {"input": 1000, "output": 5000, "cached_input": 100}


@pytest.fixture
def prices_file(tmp_path):
    """Write a price table; return its path."""

    def write(table):
        path = tmp_path / "prices.json"
        path.write_text(json.dumps(table))
        return str(path)

    return write


def usage_hashes(redis_client):
    """Every hour's usage hash of the test Redis, fields and values decoded and summed."""
    summed: dict[str, int] = {}
    for key in redis_client.scan_iter("llmw:usage:*"):
        for name, value in redis_client.hgetall(key).items():
            summed[name.decode()] = summed.get(name.decode(), 0) + int(value)
    return summed


def test_a_jobs_cost_reaches_core_summed_over_its_attempts(
    env, worker, fake_llm, fake_core, redis_client, prices_file
):
    env(LLM_PRICES_FILE=prices_file({"mistral": MISTRAL}), USAGE_RETENTION_DAYS=2)
    fake_llm.push(
        Reply(content="not JSON", usage={"prompt_tokens": 100, "completion_tokens": 10}),
        Reply(
            content={"question": "Which day?"},
            usage={"prompt_tokens": 300, "completion_tokens": 20, "cached_tokens": 200},
        ),
    )

    followup.send(41, 42, {"text": "move it"})
    drain(worker, "llm.followup")

    # 100 x 1000 + 10 x 5000, then 100 x 1000 + 200 x 100 (cached) + 20 x 5000 micro-dollars
    [update] = fake_core.job_updates(41)
    assert update["status"] == "completed"
    assert update["usage"] == {
        "prompt_tokens": 400,
        "completion_tokens": 30,
        "cached_tokens": 200,
        "attempts": 2,
        "model": "mistral",
        "served_by": "primary",
        "cost_usd": 0.37,
    }
    counted = usage_hashes(redis_client)
    assert counted["user:42:cost"] == 370_000
    assert counted["job_type:followup:tokens"] == 430
    assert counted["model:mistral:calls"] == 2
    assert counted["total:all:cost"] == 370_000
    assert "total:all:unpriced_tokens" not in counted
    [key] = redis_client.keys("llmw:usage:*")
    assert 2 * 86_400 < redis_client.ttl(key) <= 2 * 86_400 + 3600  # kept 2 days after its hour


def test_an_unpriced_model_gives_no_cost_and_counts_its_tokens_unpriced(
    env, worker, fake_llm, fake_core, redis_client, prices_file
):
    env(LLM_PRICES_FILE=prices_file({"other-model": {"input": 1, "output": 2}}))
    fake_llm.answers["IntentResult"] = GOOD_INTENT

    intent_classify.send(42, 7, {"text": "buy milk"})
    drain(worker, "llm.intent")

    [update] = fake_core.job_updates(42)
    assert "cost_usd" not in update["usage"]
    assert update["usage"]["unpriced_calls"] == 1
    counted = usage_hashes(redis_client)
    assert counted["user:7:unpriced_tokens"] == 18
    assert counted["model:mistral:tokens"] == 18
    assert not [name for name in counted if name.endswith(":cost")]


def test_usage_totals_equal_what_core_received_to_the_cent(
    env, worker, fake_llm, fake_core, cli_env, redis_client, prices_file
):
    env(LLM_PRICES_FILE=prices_file({"mistral": MISTRAL}))
    fake_llm.answers["IntentResult"] = GOOD_INTENT
    jobs = {50: 42, 51: 42, 52: 42, 53: 7}
    for job_id, user_id in jobs.items():
        intent_classify.send(job_id, user_id, {"text": f"note {job_id}"})
    drain(worker, "llm.intent")
    fake_llm.push("no JSON at all")  # job 54 of user 7 answers twice
    intent_classify.send(54, 7, {"text": "one more"})
    drain(worker, "llm.intent")
    jobs[54] = 7

    core_cost = {user: 0.0 for user in jobs.values()}
    for job_id, user_id in jobs.items():
        [update] = fake_core.job_updates(job_id)
        core_cost[user_id] += update["usage"]["cost_usd"]
    assert fake_core.job_updates(54)[0]["usage"]["attempts"] == 2

    done = run_cli(cli_env, "usage", "--since", "2h", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert round(report["total"]["cost_usd"], 2) == round(sum(core_cost.values()), 2) == 0.28
    users = {entry["id"]: entry for entry in report["user"]["by_cost"]}
    assert round(users["42"]["cost_usd"], 2) == round(core_cost[42], 2) == 0.14
    assert round(users["7"]["cost_usd"], 2) == round(core_cost[7], 2) == 0.14
    assert report["total"]["cost_micro_usd"] == 6 * 46_000  # 11 x 1000 + 7 x 5000 per call
    assert report["total"]["unpriced_tokens"] == 0
    text = run_cli(cli_env, "usage", "--since", "30m", "--top", "1")
    assert text.returncode == 0, text.stderr
    assert (
        "total: 6 calls, 108 tokens, $0.28 (exactly $0.276000); unpriced: 0 tokens" in text.stdout
    )
    assert text.stdout.startswith("hours summed: ")
    assert "top users by cost" in text.stdout and "top models by tokens" in text.stdout


def test_a_bad_prices_file_stops_the_worker_at_start_up(cli_env, tmp_path):
    bad = tmp_path / "prices.json"
    bad.write_text('{"mistral": {"input": -1, "output": 2}}')

    done = subprocess.run(
        [sys.executable, "-m", "dramatiq", "actors", "--processes", "1", "--threads", "1"],
        cwd=ROOT,
        env={**cli_env, "LLM_PRICES_FILE": str(bad)},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode != 0
    assert (
        f"llm-worker: invalid setting LLM_PRICES_FILE ({bad}): 'input' of 'mistral' must be a "
        "non-negative number, got -1" in done.stderr
    )


def test_the_cost_counter_beside_the_token_counters(
    start_worker, cli_env, fake_llm, fake_core, tmp_path, prices_file
):
    fake_llm.answers["IntentResult"] = GOOD_INTENT
    port = free_port()
    start_worker(
        "--processes",
        "1",
        "--threads",
        "1",
        METRICS_ENABLED="true",
        LLM_PRICES_FILE=prices_file({"mistral": MISTRAL}),
        dramatiq_prom_port=str(port),
        dramatiq_prom_db=str(tmp_path / "prom"),
    )
    intent_classify.send(60, 42, {"text": "x"})
    wait_for(lambda: fake_core.job_updates(60), timeout=30)

    text = wait_for(lambda: scrape_metrics(port, "llm_cost_usd_total{"), timeout=30)
    labels = 'actor="intent_classify",model="mistral",provider="openai"'
    assert f"llm_cost_usd_total{{{labels}}} 0.046" in text


def test_a_review_serves_no_user_and_a_job_its_own():
    review = dramatiq.Message(
        queue_name="llm.review",
        actor_name="review_chunk",
        args=("rr-1", 3, "REVIEW_REQUEST", {}),
        kwargs={},
        options={},
    )
    job = dramatiq.Message(
        queue_name="llm.intent",
        actor_name=intent_classify.actor_name,
        args=(1, 42, {"text": "x"}),
        kwargs={},
        options={},
    )

    assert (call_user(review), call_user(job)) == ("-", "42")
