"""Fleet-wide LLM capacity scenarios: the concurrency cap, the rate limit, priority, leases."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from functools import partial
from typing import Any

from llm_worker.fleet.capacity import CapacityLimits, CapacityStore
from llm_worker.testing.fakes import Reply

from .harness import bench_redis, median, pending, percentile, run_workers, wait_until
from .scenarios import GOOD, Bench, Row

NO_MATCH = {"task_id": None, "confidence": 0.1, "reason": "-"}
#: The fake LLM's limit: it answers 429 (``Retry-After: 1``) above this many requests.
SERVER_SLOTS = 8


def _job_calls(bench: Bench) -> list[dict[str, Any]]:
    return [r for r in bench.llm.chat_requests() if r["json"].get("max_tokens") != 1]


def _completions(bench: Bench) -> list[float]:
    return sorted(r["at"] for r in bench.core.requests if r["method"] == "PATCH")


def _limited_llm(bench: Bench, latency: float) -> None:
    bench.reset()
    bench.llm.concurrency_limit = SERVER_SLOTS
    bench.llm.busy_reply = Reply(
        status=429, body={"error": {"message": "server busy"}}, headers={"Retry-After": "1"}
    )
    bench.llm.reset_counters()
    bench.llm.fallback = lambda request: Reply(content=GOOD, delay=latency)


def _cap_run(bench: Bench, name: str, jobs: int, latency: float, **env: str) -> dict[str, Any]:
    from actors import intent_classify

    _limited_llm(bench, latency)
    log = bench.logs / f"capacity-{name}.log"
    settings = bench.env(LLM_TOKENIZER="estimate", LLM_PROBE_INTERVAL_SECONDS="2", **env)
    client = bench_redis()
    with run_workers("actors", processes=2, threads=32, env=settings, log=log) as workers:
        cpu_before = workers.cpu()
        started = time.time()
        for n in range(jobs):
            intent_classify.send(n, 42, {"text": "x"})
        wait_until(lambda: pending(client, "llm.intent") == 0, 600, "llm.intent to drain")
        cpu = workers.cpu() - cpu_before
    done = _completions(bench)
    text = log.read_text(errors="replace")
    completed = {r["path"] for r in bench.core.requests if r["json"]["status"] == "completed"}
    return {
        "jobs": jobs,
        "latency_s": latency,
        "completed": len(completed),
        "jobs_per_second": len(done) / (done[-1] - started),
        "ideal_jobs_per_second": SERVER_SLOTS / latency,
        "peak_in_flight": bench.llm.peak_in_flight,
        "http_429": bench.llm.busy_answers,
        "breaker_openings": text.count("breaker opened"),
        "cooldowns": text.count("cools down"),
        "cpu_ms_per_job": cpu * 1000 / jobs,
    }


def concurrency_cap(bench: Bench) -> None:
    """A fake LLM that answers 429 above 8 concurrent requests, 2 processes x 32 threads:
    with ``LLM_MAX_CONCURRENT_REQUESTS=8`` (waiting on the thread, the default, and by
    re-enqueueing only), and without the cap."""
    jobs, latency = (200, 0.25) if bench.quick else (500, 0.5)
    runs = {
        "cap 8, wait on thread": _cap_run(
            bench, "cap-wait", jobs, latency, LLM_MAX_CONCURRENT_REQUESTS="8"
        ),
        "cap 8, re-enqueue only": _cap_run(
            bench,
            "cap-requeue",
            jobs,
            latency,
            LLM_MAX_CONCURRENT_REQUESTS="8",
            LLM_CAPACITY_WAIT_SECONDS="0",
        ),
        "no cap": _cap_run(bench, "no-cap", jobs // 2, latency),
    }
    bench.raw["concurrency_cap"] = runs
    scenario = f"7. cap: LLM 429s above 8, {latency:g} s latency, 2x32 threads"
    for name, run in runs.items():
        ideal = run["ideal_jobs_per_second"]
        capped = name.startswith("cap")
        bench.rows += [
            Row(
                scenario,
                f"{name}: jobs/s vs 8 / latency ({run['completed']}/{run['jobs']} completed)",
                run["jobs_per_second"],
                ideal,
                "jobs/s",
                ">= 0.90" if capped else "",
            ),
            Row(
                scenario,
                f"{name}: peak in flight at the LLM, 429s, breaker openings",
                float(run["peak_in_flight"]),
                None,
                f"in flight, {run['http_429']} 429s, {run['breaker_openings']} openings",
                "<= 8, 0 429s" if capped else "",
            ),
            Row(scenario, f"{name}: worker CPU per job", run["cpu_ms_per_job"], None, "ms"),
        ]
    bench.llm.concurrency_limit = 0


def _max_in_window(times: list[float], window: float) -> int:
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def rate_limit(bench: Bench) -> None:
    """``LLM_REQUESTS_PER_MINUTE=600`` over 300 jobs (instant LLM, 2 processes x 8 threads):
    the achieved rate and the most requests in any 1 s window."""
    from actors import intent_classify

    limit, jobs = 600, (150 if bench.quick else 300)
    bench.reset()
    bench.llm.answers["IntentResult"] = GOOD
    client = bench_redis()
    env = bench.env(LLM_TOKENIZER="estimate", LLM_REQUESTS_PER_MINUTE=str(limit))
    log = bench.logs / "rate-limit.log"
    with run_workers("actors", processes=2, threads=8, env=env, log=log):
        for n in range(jobs):
            intent_classify.send(n, 42, {"text": "x"})
        wait_until(lambda: pending(client, "llm.intent") == 0, 300, "llm.intent to drain")
    calls = sorted(r["at"] for r in _job_calls(bench))
    burst = limit // 60
    # The bucket starts full: the first `burst` calls go at once, then one per 1/rate s.
    steady = (len(calls) - burst) / (calls[-1] - calls[0]) * 60
    overall = (len(calls) - 1) / (calls[-1] - calls[0]) * 60
    window_max = _max_in_window(calls, 1.0)
    later_max = _max_in_window([t for t in calls if t >= calls[0] + 1.0], 1.0)
    bench.raw["rate_limit"] = {
        "limit_per_minute": limit,
        "jobs": jobs,
        "calls": len(calls),
        "steady_rate_per_minute": steady,
        "overall_rate_per_minute": overall,
        "max_in_1s_window": window_max,
        "max_in_1s_window_after_first_second": later_max,
    }
    scenario = f"8. rate limit: {limit} requests/min, {jobs} jobs"
    bench.rows += [
        Row(scenario, "achieved rate after the burst", steady, float(limit), "/min", "+-5%"),
        Row(scenario, "achieved rate, first to last call", overall, float(limit), "/min", ""),
        Row(
            scenario,
            "most calls in any 1 s window (the bucket starts full)",
            float(window_max),
            float(2 * burst),
            "calls",
            f"<= burst {burst} + {burst} refilled",
        ),
        Row(
            scenario,
            "most calls in any 1 s window after the first second",
            float(later_max),
            float(burst),
            "calls",
            f"<= {burst} (+1 at a window's edge)",
        ),
    ]


def _reported(bench: Bench, path: str) -> bool:
    return any(r["path"] == path for r in bench.core.requests)


def _priority_run(
    bench: Bench, name: str, batch: int, latency: float, samples: int, **env: str
) -> dict[str, list[float]]:
    """Queue ``batch`` batch jobs, then send ``samples`` intent jobs one after another;
    each one's send -> LLM call and send -> Core times."""
    from actors import intent_classify, task_match

    bench.reset()
    bench.core.tasks[42] = []

    def answer(request: dict[str, Any]) -> Reply:
        intent = "IntentResult" in str(request["json"])
        return Reply(content=GOOD if intent else NO_MATCH, delay=latency)

    bench.llm.fallback = answer
    settings = bench.env(LLM_TOKENIZER="estimate", LLM_MAX_CONCURRENT_REQUESTS="8", **env)
    log = bench.logs / f"priority-{name}.log"
    to_call, to_core = [], []
    with run_workers("actors", processes=2, threads=32, env=settings, log=log):
        for n in range(batch):
            task_match.send(n, 42, {"content": "note"})
        wait_until(lambda: len(bench.core.requests) >= 24, 120, "the backlog to run")
        for sample in range(samples):
            job_id = 900_000 + sample
            path = f"/jobs/{job_id}"
            sent = time.time()
            intent_classify.send(job_id, 42, {"text": "x"})
            wait_until(partial(_reported, bench, path), 600, path)
            done = next(r["at"] for r in bench.core.requests if r["path"] == path)
            called = max(r["at"] for r in _job_calls(bench) if "IntentResult" in str(r["json"]))
            to_call.append(called - sent)
            to_core.append(done - sent)
    return {"send_to_llm_call_s": to_call, "send_to_core_s": to_core}


def priority(bench: Bench) -> None:
    """500 batch jobs (``task_match``) queued with the cap of 8 saturated, then intent
    jobs one at a time: their send -> Core latency (median) against the LLM's, with
    the default priorities and with every actor at the same priority."""
    batch, latency, samples = (200, 0.25, 3) if bench.quick else (500, 0.5, 5)
    runs = {
        "default priorities": _priority_run(bench, "default", batch, latency, samples),
        "every actor at one priority": _priority_run(
            bench, "same", batch, latency, samples, LLM_PRIORITY_INTENT_CLASSIFY="10"
        ),
    }
    bench.raw["priority"] = {"batch_jobs": batch, "llm_latency_s": latency, "runs": runs}
    scenario = f"9. priority: {batch} batch jobs queued, cap 8 saturated"
    for name, run in runs.items():
        bench.rows += [
            Row(
                scenario,
                f"intent send -> Core, median of {samples}, {name}",
                median(run["send_to_core_s"]),
                latency,
                "s",
                "about one LLM latency" if name.startswith("default") else "",
            ),
            Row(
                scenario,
                f"intent send -> its LLM call, median, {name}",
                median(run["send_to_llm_call_s"]),
                None,
                "s",
            ),
        ]


def slot_lease(bench: Bench) -> None:
    """A worker SIGKILLed while holding all 8 slots (LLM hanging): how long until the
    cap's slots are all free again, against ``LLM_SLOT_LEASE_SECONDS``."""
    from actors import intent_classify

    lease = 5.0
    bench.reset()
    bench.llm.fallback = lambda request: Reply(content=GOOD, delay=120)
    limits = CapacityLimits(max_concurrent=8, lease_seconds=lease)
    store = CapacityStore(bench_redis(), "llmw", limits)
    env = bench.env(
        LLM_TOKENIZER="estimate",
        LLM_MAX_CONCURRENT_REQUESTS="8",
        LLM_SLOT_LEASE_SECONDS=str(lease),
    )
    log = bench.logs / "slot-lease.log"
    with run_workers("actors", processes=1, threads=8, env=env, log=log) as workers:
        for n in range(8):
            intent_classify.send(n, 42, {"text": "x"})
        wait_until(lambda: store.snapshot().slots_in_use == 8, 60, "8 slots to be held")
        time.sleep(lease * 1.5)
        held_past_lease = store.snapshot().slots_in_use
        for pid in workers.pids:
            os.kill(pid, signal.SIGKILL)
        killed = time.time()
        wait_until(lambda: store.snapshot().slots_in_use == 0, lease * 4, "the slots to free")
        freed_after = time.time() - killed
    bench.llm.fallback = None
    bench.raw["slot_lease"] = {
        "lease_s": lease,
        "held_after_1_5_leases": held_past_lease,
        "freed_after_s": freed_after,
    }
    scenario = f"10. killed holder: 8 slots, lease {lease:g} s"
    bench.rows += [
        Row(scenario, "slots held by the live worker after 1.5 leases", held_past_lease, 8, ""),
        Row(scenario, "all slots free after the SIGKILL", freed_after, lease, "s", "<= lease"),
    ]


NO_EVENT: dict[str, list[Any]] = {"events": []}


def _user_of(request: dict[str, Any]) -> int:
    """The user a fair-share job was for: its email's subject is ``u{user}-{n}``."""
    text = str(request["json"]["messages"][-1]["content"])
    return int(text.split('"subject": "u', 1)[1].split("-", 1)[0])


def _peak_in_flight(starts: list[float], seconds: float) -> int:
    """Most calls in flight at once, each from its start for ``seconds``."""
    edges = sorted([(t, 1) for t in starts] + [(t + seconds, -1) for t in starts])
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


#: Prices of the fair-share runs' model, USD per million tokens: high, so that the cost
#: of a few hundred calls of the fake LLM's 11 + 7 tokens runs to dollars and cents.
BENCH_PRICES = {"bench-model": {"input": 2000, "output": 8000, "cached_input": 1000}}


def _usage_totals(settings: dict[str, str]) -> dict[str, int]:
    """``llm-worker usage --since 1h --json``'s totals (tokens, micro-dollars), as the
    operator would read them."""
    done = subprocess.run(
        [sys.executable, "-m", "console.cli", "usage", "--since", "1h", "--json"],
        env={**os.environ, **settings},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    total = json.loads(done.stdout)["total"]
    return {"tokens": total["tokens"], "cost_micro_usd": total["cost_micro_usd"]}


def _core_totals(bench: Bench) -> dict[str, int]:
    """What Core received: the tokens and cost (in micro-dollars) of every job reported."""
    usages = [r["json"]["usage"] for r in bench.core.requests if r["method"] == "PATCH"]
    return {
        "tokens": sum(u["prompt_tokens"] + u["completion_tokens"] for u in usages),
        "cost_micro_usd": sum(round(u.get("cost_usd", 0) * 1_000_000) for u in usages),
    }


def _share_run(
    bench: Bench, name: str, backlog: int, others: int, latency: float, **env: str
) -> dict[str, Any]:
    """User 1 queues ``backlog`` email jobs; once they run, ``others`` other users send one
    each. Each other job's send -> Core time, user 1's throughput and calls in flight, and
    the cost and tokens the usage command counts against those Core received."""
    from actors import email_extract

    bench.reset()
    bench.llm.fallback = lambda request: Reply(content=NO_EVENT, delay=latency)
    prices = bench.logs / "prices.json"
    prices.write_text(json.dumps(BENCH_PRICES))
    settings = bench.env(
        LLM_TOKENIZER="estimate",
        LLM_MAX_CONCURRENT_REQUESTS="8",
        LLM_TEXT_MODEL="bench-model",
        LLM_PRICES_FILE=str(prices),
        **env,
    )
    counted_before = _usage_totals(settings)
    log = bench.logs / f"share-{name}.log"
    client = bench_redis()
    with run_workers("actors", processes=2, threads=32, env=settings, log=log) as workers:
        cpu_before = workers.cpu()
        for n in range(backlog):
            email_extract.send(n, 1, {"subject": f"u1-{n}", "body": "newsletter"})
        wait_until(lambda: len(bench.core.requests) >= 24, 120, "the backlog to run")
        sent = time.time()
        for user in range(2, 2 + others):
            job_id = 900_000 + user
            email_extract.send(job_id, user, {"subject": f"u{user}-0", "body": "see you"})
        wait_until(
            lambda: pending(client, email_extract.queue_name) == 0, 900, "the jobs to finish"
        )
        cpu = workers.cpu() - cpu_before
    patches = [r for r in bench.core.requests if r["method"] == "PATCH"]
    other_done = [r["at"] - sent for r in patches if int(r["path"].split("/")[-1]) >= 900_000]
    backlog_done = sorted(r["at"] for r in patches if int(r["path"].split("/")[-1]) < 900_000)
    calls = _job_calls(bench)
    starts = {user: [r["at"] for r in calls if _user_of(r) == user] for user in (1,)}
    return {
        "others_send_to_core_s": sorted(other_done),
        "backlog_completed": len(backlog_done),
        "backlog_jobs_per_second": (len(backlog_done) - 1) / (backlog_done[-1] - backlog_done[0]),
        "user1_peak_in_flight": _peak_in_flight(starts[1], latency),
        "peak_in_flight": _peak_in_flight([r["at"] for r in calls], latency),
        "cpu_ms_per_job": cpu * 1000 / (backlog + others),
        "sent_back": log.read_text(errors="replace").count("for LLM capacity ("),
        "usage_command": {k: v - counted_before[k] for k, v in _usage_totals(settings).items()},
        "core_received": _core_totals(bench),
    }


def fair_share(bench: Bench) -> None:
    """One user queues 400 ``email_extract`` jobs with the cap of 8 saturated by a 0.5 s
    LLM; then 10 other users send one each: their send -> Core time with fair share
    (``LLM_SHARE_KEY=user_id``) against first come, first served (``none``) in the same
    run, and the first user's throughput against the cap's; then the same backlog with
    ``LLM_MAX_CONCURRENT_REQUESTS_PER_USER=3``: the user's peak calls in flight."""
    backlog, others, latency = (150, 5, 0.25) if bench.quick else (400, 10, 0.5)
    ideal = 8 / latency
    runs = {
        "first come, first served": _share_run(
            bench, "none", backlog, others, latency, LLM_SHARE_KEY="none"
        ),
        "fair share": _share_run(bench, "fair", backlog, others, latency),
        "per-user limit 3": _share_run(
            bench, "limit", backlog, 0, latency, LLM_MAX_CONCURRENT_REQUESTS_PER_USER="3"
        ),
    }
    bench.raw["fair_share"] = {
        "backlog": backlog,
        "others": others,
        "llm_latency_s": latency,
        "runs": runs,
    }
    scenario = f"13. fair share: one user's {backlog} jobs queued, cap 8 saturated"
    fifo, fair, limited = runs.values()
    for name, run in (("first come, first served", fifo), ("fair share", fair)):
        times = run["others_send_to_core_s"]
        bench.rows += [
            Row(
                scenario,
                f"{others} other users' jobs send -> Core, p50, {name}",
                median(times),
                latency,
                "s",
                "<= 2 LLM latencies" if name == "fair share" else "",
            ),
            Row(
                scenario,
                f"{others} other users' jobs send -> Core, p95, {name}",
                percentile(times, 0.95),
                latency,
                "s",
                "<= 4 LLM latencies" if name == "fair share" else "",
            ),
        ]
    bench.rows += [
        Row(
            scenario,
            "first user's jobs/s with fair share, against the cap's",
            fair["backlog_jobs_per_second"],
            ideal,
            "jobs/s",
            ">= 0.9",
        ),
        Row(
            scenario,
            "first user's jobs/s first come, first served, against the cap's",
            fifo["backlog_jobs_per_second"],
            ideal,
            "jobs/s",
        ),
        Row(
            scenario,
            "peak calls in flight of a user limited to 3",
            limited["user1_peak_in_flight"],
            3,
            "",
            "<= 3",
        ),
        Row(
            scenario,
            "cost summed by llm-worker usage, against what Core received",
            fair["usage_command"]["cost_micro_usd"] / 1_000_000,
            fair["core_received"]["cost_micro_usd"] / 1_000_000,
            "USD",
            "equal to the cent",
        ),
        Row(
            scenario,
            "tokens summed by llm-worker usage, against what Core received",
            fair["usage_command"]["tokens"],
            fair["core_received"]["tokens"],
            "",
            "equal",
        ),
        Row(
            scenario,
            "worker CPU per job with fair share, against first come, first served",
            fair["cpu_ms_per_job"],
            fifo["cpu_ms_per_job"],
            "ms",
        ),
    ]


#: The capacity scenarios, run by ``python -m bench`` after the others.
CAPACITY_SCENARIOS = {
    "capacity-cap": concurrency_cap,
    "rate-limit": rate_limit,
    "priority": priority,
    "slot-lease": slot_lease,
    "fair-share": fair_share,
}
