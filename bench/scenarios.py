"""The benchmark scenarios; each returns rows of (figure, value, baseline, unit) and raw data."""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_worker.testing.fakes import FakeCore, FakeLLM, Reply

from .commands import commands
from .harness import (
    BENCH_REDIS_URL,
    bench_redis,
    cpu_seconds,
    median,
    pending,
    percentile,
    run_workers,
    wait_until,
)

GOOD = {"intent": "reminder", "confidence": 0.9}


@dataclass
class Row:
    """One line of the results table."""

    scenario: str
    figure: str
    value: float
    baseline: float | None
    unit: str
    target: str = ""

    @property
    def ratio(self) -> float | None:
        """value / baseline."""
        return self.value / self.baseline if self.baseline else None


@dataclass
class Bench:
    """Shared fakes, settings and results of one run."""

    quick: bool
    logs: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="llmw-bench-")))
    llm: FakeLLM = field(default_factory=FakeLLM)
    core: FakeCore = field(default_factory=FakeCore)
    rows: list[Row] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    _port: int = 19300

    def env(self, **extra: str) -> dict[str, str]:
        """Worker environment: the bench Redis, the fakes, metrics on a fresh port."""
        self._port += 1
        prom_db = self.logs / f"prom-{self._port}"
        prom_db.mkdir()
        return {
            "REDIS_URL": BENCH_REDIS_URL,
            "LLM_BASE_URL": self.llm.base_url,
            "CORE_API_URL": self.core.url,
            "METRICS_ENABLED": "true",
            "dramatiq_prom_port": str(self._port),
            "dramatiq_prom_db": str(prom_db),
            **extra,
        }

    def reset(self) -> None:
        """Forget recorded requests and scripted answers; flush the bench database."""
        self.llm.concurrency_limit = 0
        self.llm.reset_counters()
        self.llm.clear()
        self.llm.script.clear()
        self.llm.answers.clear()
        self.llm.fallback = None
        self.core.clear()
        bench_redis().flushdb()


#: Worker layout of the throughput runs: with an instant LLM, three processes of
#: eight threads did best on 2 cores (2x4: ~520, 2x8: ~470, 4x4: ~440 jobs/s).
THROUGHPUT_LAYOUT = (3, 8)


def _throughput_run(
    bench: Bench, actor: Any, queue: str, workers: Any, jobs: int
) -> dict[str, float]:
    client = bench_redis()
    redis_pid = [int(client.info("server")["process_id"])]
    cpu_before, redis_before, own_before = workers.cpu(), cpu_seconds(redis_pid), _own_cpu()
    started = time.monotonic()
    for n in range(jobs):
        actor.send(n, 42, {"text": "remind me to call mum at 6"})
    wait_until(lambda: pending(client, queue) == 0, 300, f"{queue} to drain")
    elapsed = time.monotonic() - started
    return {
        "jobs_per_second": jobs / elapsed,
        "cpu_ms_per_job": (workers.cpu() - cpu_before) * 1000 / jobs,
        # Redis is shared with whatever else runs on the machine: an upper bound.
        "redis_cpu_ms_per_job": (cpu_seconds(redis_pid) - redis_before) * 1000 / jobs,
        # This process: the fake LLM and Core, and the producer sending the jobs.
        "fakes_cpu_ms_per_job": (_own_cpu() - own_before) * 1000 / jobs,
    }


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def throughput(bench: Bench) -> None:
    """Scenarios 1 and 2: jobs/s and CPU per job with an instant LLM, against baselines:
    the same function under Dramatiq's defaults, a bare actor doing the same I/O, a
    no-op actor; and the full stack under gevent."""
    from actors import intent_classify

    from .baseline import bare_io, noop, plain_intent

    jobs, repeats = (600, 2) if bench.quick else (1000, 3)
    variants = [
        ("full stack", "actors", intent_classify, "llm.intent", False),
        ("full stack, gevent", "actors", intent_classify, "llm.intent", True),
        ("default middleware", "bench.baseline:broker", plain_intent, "bench.intent", False),
        ("bare I/O actor", "bench.baseline:broker", bare_io, "bench.bare", False),
        ("no-op actor", "bench.baseline:broker", noop, "bench.noop", False),
    ]
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, *_ in variants}
    processes, threads = THROUGHPUT_LAYOUT
    for repeat in range(repeats):
        # One variant at a time (running them side by side skews the CPU figures),
        # in a rotating order, so that machine noise hits every variant alike.
        order = variants[repeat % len(variants) :] + variants[: repeat % len(variants)]
        for name, module, actor, queue, gevent in order:
            bench.reset()
            bench.llm.answers["IntentResult"] = GOOD
            with run_workers(
                module,
                processes=processes,
                threads=threads,
                env=bench.env(LLM_TOKENIZER="estimate"),
                log=bench.logs / f"throughput-{queue}-{int(gevent)}-{repeat}.log",
                queues=(queue,),
                gevent=gevent,
            ) as workers:
                _throughput_run(bench, actor, queue, workers, 50)  # warm up connections
                runs[name].append(_throughput_run(bench, actor, queue, workers, jobs))
    results: dict[str, dict[str, Any]] = {
        name: {
            **{figure: median([r[figure] for r in variant_runs]) for figure in variant_runs[0]},
            "runs": variant_runs,
        }
        for name, variant_runs in runs.items()
    }
    bench.raw["throughput"] = results
    _throughput_rows(bench, results)


def _throughput_rows(bench: Bench, results: dict[str, dict[str, Any]]) -> None:
    full = results["full stack"]
    scenario = "1. throughput, instant LLM ({} processes x {} threads)".format(*THROUGHPUT_LAYOUT)
    bench.rows += [
        Row(
            scenario,
            "intent_classify jobs/s vs default middleware",
            full["jobs_per_second"],
            results["default middleware"]["jobs_per_second"],
            "jobs/s",
            ">= 500 jobs/s, ratio >= 0.90",
        ),
        Row(
            scenario,
            "intent_classify jobs/s vs no-op actor",
            full["jobs_per_second"],
            results["no-op actor"]["jobs_per_second"],
            "jobs/s",
        ),
    ]
    for baseline, target in (
        ("bare I/O actor", "<= 0.5"),
        ("default middleware", ""),
        ("no-op actor", ""),
    ):
        bench.rows.append(
            Row(
                "2. CPU per job",
                f"worker CPU ms/job vs {baseline}",
                full["cpu_ms_per_job"],
                results[baseline]["cpu_ms_per_job"],
                "ms",
                target,
            )
        )
    total = full["cpu_ms_per_job"] + full["redis_cpu_ms_per_job"] + full["fakes_cpu_ms_per_job"]
    bench.rows.append(
        Row(
            "2. CPU per job",
            f"all CPU ms/job (worker {full['cpu_ms_per_job']:.2f}, Redis "
            f"{full['redis_cpu_ms_per_job']:.2f}, fakes and producer "
            f"{full['fakes_cpu_ms_per_job']:.2f}) vs 2 cores at 1,024 jobs/s",
            total,
            2000 / 1024,
            "ms",
            "a 1 s LLM at 1,024 in flight needs ratio <= 1",
        )
    )
    bench.rows.append(
        Row(
            "2. CPU per job",
            "worker CPU ms/job, gevent vs threads",
            results["full stack, gevent"]["cpu_ms_per_job"],
            full["cpu_ms_per_job"],
            "ms",
        )
    )


#: Worker layout per number of requests in flight: (processes, threads).  Four
#: processes of 64 threads beat two of 128 on 2 cores: less contention per process.
LAYOUTS = {16: (2, 8), 64: (2, 32), 256: (4, 64)}


def concurrency(bench: Bench) -> None:
    """Scenario 3: jobs/s with a 1 s LLM at 16, 64 and 256 in flight, against the ideal.

    The rate is the steady state over six rounds of ``in_flight`` jobs: the jobs
    completed after the first round, over the time from the first round's end to
    the last completion (the first round's second is the LLM's latency).
    """
    from actors import intent_classify

    levels = (16, 64) if bench.quick else (16, 64, 256)
    client = bench_redis()
    results = {}
    for in_flight in levels:
        bench.reset()
        bench.llm.fallback = lambda request: Reply(content=GOOD, delay=1.0)
        processes, threads = LAYOUTS[in_flight]
        jobs = in_flight * 6
        log = bench.logs / f"concurrency-{in_flight}.log"
        env = bench.env(LLM_TOKENIZER="estimate")
        with run_workers(
            "actors", processes=processes, threads=threads, env=env, log=log
        ) as workers:
            for n in range(jobs):
                intent_classify.send(n, 42, {"text": "x"})
            wait_until(lambda: pending(client, "llm.intent") == 0, 120, "llm.intent to drain")
            rss = workers.rss()
        done = sorted(r["at"] for r in bench.core.requests if r["method"] == "PATCH")
        rate = (len(done) - in_flight) / (done[-1] - done[in_flight - 1])
        results[in_flight] = {
            "jobs_per_second": rate,
            "ideal": float(in_flight),
            "rss_mb": rss,
            "processes": processes,
            "threads": threads,
            "jobs": jobs,
        }
        bench.rows.append(
            Row(
                "3. LLM-bound, 1 s LLM",
                f"{in_flight} in flight ({processes}x{threads} threads, RSS {rss:.0f} MB)",
                rate,
                float(in_flight),
                "jobs/s",
                ">= 0.90 of ideal at 256" if in_flight == 256 else "",
            )
        )
    bench.raw["concurrency"] = results


def _latencies(bench: Bench, actor: Any, count: int, *, first_job_id: int) -> list[float]:
    """Send ``count`` jobs one at a time (ids from ``first_job_id``: a job id already
    notified is rightly never notified again) and time each to its notification."""
    client = bench_redis()
    stream = "notify:telegram"
    cursor = b"0-0"
    latencies = []
    for n in range(count):
        job_id = first_job_id + n
        started = time.monotonic()
        actor.send(job_id, 42, {"text": "x"})
        while True:
            reply = client.xread({stream: cursor}, block=5000, count=10)
            if not reply:
                raise TimeoutError("no notification within 5 s")
            found = False
            for _, entries in reply:
                for entry_id, fields in entries:
                    cursor = entry_id
                    found = found or json.loads(fields[b"data"])["job_id"] == job_id
            if found:
                break
        latencies.append((time.monotonic() - started) * 1000)
        time.sleep(0.02)
    return latencies


def latency(bench: Bench) -> None:
    """Scenario 4: send -> notification p50 and p99 at light load, against a no-op actor."""
    from actors import intent_classify

    from .baseline import noop_notify

    count = 60 if bench.quick else 200
    results = {}
    for name, module, actor in (
        ("full stack", "actors", intent_classify),
        ("no-op actor", "bench.baseline:broker", noop_notify),
    ):
        bench.reset()
        bench.llm.answers["IntentResult"] = GOOD
        log = bench.logs / f"latency-{actor.actor_name}.log"
        with run_workers(module, processes=1, threads=4, env=bench.env(), log=log):
            _latencies(bench, actor, 10, first_job_id=100_000)  # warm-up
            values = _latencies(bench, actor, count, first_job_id=200_000)
        results[name] = {"p50_ms": percentile(values, 0.5), "p99_ms": percentile(values, 0.99)}
    bench.raw["latency"] = results
    full, base = results["full stack"], results["no-op actor"]
    bench.rows += [
        Row(
            "4. latency, light load",
            "send -> notification p50",
            full["p50_ms"],
            base["p50_ms"],
            "ms",
        ),
        Row(
            "4. latency, light load",
            "send -> notification p99",
            full["p99_ms"],
            base["p99_ms"],
            "ms",
        ),
    ]


def outage(bench: Bench) -> None:
    """Scenario 5: 1,000 queued jobs, the LLM down (HTTP 503) for a while, 2 processes."""
    from actors import intent_classify

    jobs, down_for, probe_interval = (300, 20.0, 5.0) if bench.quick else (1000, 60.0, 10.0)
    bench.reset()
    bench.llm.fallback = lambda request: Reply(status=503, body={"error": {"message": "down"}})
    env = bench.env(LLM_PROBE_INTERVAL_SECONDS=str(probe_interval), LLM_TOKENIZER="estimate")
    log = bench.logs / "outage.log"
    with run_workers("actors", processes=2, threads=8, env=env, log=log):
        for n in range(jobs):
            intent_classify.send(n, 42, {"text": "x"})
        time.sleep(down_for)
        during = bench.llm.chat_requests()
        probes = [r for r in during if r["json"].get("max_tokens") == 1]
        returned = time.time()
        bench.llm.fallback = None
        bench.llm.answers["IntentResult"] = GOOD
        wait_until(lambda: len(bench.core.job_updates()) >= jobs, 300, "every job to complete")
        time.sleep(1)
    updates = [r for r in bench.core.requests if r["method"] == "PATCH"]
    completed = {r["path"] for r in updates if r["json"]["status"] == "completed"}
    first = min(r["at"] for r in updates) - returned
    last = max(r["at"] for r in updates) - returned
    allowed_probes = int(down_for / probe_interval) + 1
    bench.raw["outage"] = {
        "jobs": jobs,
        "down_seconds": down_for,
        "probe_interval": probe_interval,
        "llm_requests_during_outage": len(during),
        "probes": len(probes),
        "first_completion_after_return_s": first,
        "last_completion_after_return_s": last,
        "lost": jobs - len(completed),
        "duplicate_updates": len(updates) - len(completed),
    }
    scenario = (
        f"5. outage: {jobs} jobs, LLM down {down_for:.0f} s, probe every {probe_interval:.0f} s"
    )
    bench.rows += [
        Row(
            scenario,
            "probes during the outage vs one per interval",
            float(len(probes)),
            float(allowed_probes),
            "probes",
            "<= 1 probe per interval",
        ),
        Row(
            scenario,
            "job calls that met the outage vs worker threads",
            float(len(during) - len(probes)),
            16.0,
            "requests",
            "<= 1 per thread (in flight when it opened)",
        ),
        Row(
            scenario,
            "first job completed after the LLM returned",
            first,
            probe_interval,
            "s",
            "within one probe interval",
        ),
        Row(scenario, "last job completed after the LLM returned", last, None, "s"),
        Row(scenario, "jobs lost", float(jobs - len(completed)), None, "jobs", "0"),
    ]


def local_model(bench: Bench) -> None:
    """Real model: schema-valid first answers with and without ``response_format``, jobs/s."""
    from console.local_llm import DEFAULT_MODEL

    from .local_model import measure_local_model

    scenario = f"6. real model ({DEFAULT_MODEL})"
    result = measure_local_model(bench.logs, prompts=6 if bench.quick else 8)
    bench.raw["local_model"] = result
    if "skipped" in result:
        bench.rows.append(Row(scenario, result["skipped"], 0.0, None, ""))
        return
    bench.rows += [
        Row(
            scenario,
            "schema-valid first answers, schema vs none",
            result["valid_with_schema"],
            result["valid_without_schema"],
            "share",
        ),
        Row(
            scenario,
            "intent_classify jobs/s (1 process, schema)",
            result["jobs_per_second"],
            None,
            "jobs/s",
        ),
    ]


def fake_ceiling(bench: Bench) -> None:
    """The fake servers' own ceiling: requests/s each answers to a bare keep-alive client
    (8 threads, in a process of its own), so a reader sees when they limit a scenario."""
    from .ceiling import measure

    bench.reset()
    bench.llm.answers["IntentResult"] = GOOD
    llm = measure(bench.llm.url, "POST", "/v1/chat/completions")
    core = measure(bench.core.url, "PATCH", "/jobs/1")
    bench.raw["fake_ceiling"] = {"llm_requests_per_second": llm, "core_requests_per_second": core}
    bench.rows += [
        Row("0. fake servers' ceiling", "fake LLM, instant answers", llm, None, "req/s"),
        Row("0. fake servers' ceiling", "fake Core, PATCH", core, None, "req/s"),
    ]


def _inflight(bench: Bench) -> None:
    from .inflight import inflight

    inflight(bench)


SCENARIOS = {
    "fake-ceiling": fake_ceiling,
    "throughput": throughput,
    "inflight": _inflight,
    "concurrency": concurrency,
    "latency": latency,
    "outage": outage,
    "local-model": local_model,
    "commands": commands,
}
