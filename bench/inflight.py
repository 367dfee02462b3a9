"""Scenario 3: the cost of a job against the number in flight, with a slow (8 s) LLM.

The same job runs at 16, 64, 256 and 1,024 requests in flight, under threads and under
gevent, each run about a minute long; beside each, the same kind of worker (two processes
of eight threads or greenlets, as 1,024 in flight takes two processes) saturated at 16 in
flight by an instant LLM, where fixed costs (heartbeats, polling) are spread over hundreds
of jobs a second.  A worker whose cost per job grows with the number in flight
shows it as a ratio above 1 here.
"""

from __future__ import annotations

import time
from typing import Any

from .fake_process import llm_process
from .harness import Workers, bench_redis, pending, run_workers

#: Seconds the fake LLM takes per answer: a slow model, where in-flight capacity matters.
LATENCY_SECONDS = 8.0
#: Worker layout (processes, threads or greenlets) per number of requests in flight.
#: Threads: up to four processes (one process of many threads contends on its GIL);
#: gevent: at most 512 greenlets per process, so 1,024 takes both cores.
LAYOUTS: dict[int, dict[str, tuple[int, int]]] = {
    16: {"threads": (2, 8), "gevent": (1, 16)},
    64: {"threads": (2, 32), "gevent": (1, 64)},
    256: {"threads": (4, 64), "gevent": (1, 256)},
    1024: {"threads": (4, 256), "gevent": (2, 512)},
}
#: Layout of the saturated baseline runs: 16 in flight over two processes.
BASELINE_LAYOUT = (2, 8)
#: Rounds of the LLM's latency per run: about a minute (``--quick``: about half).
ROUNDS, QUICK_ROUNDS = 7, 3
#: Jobs of the saturated baseline runs (instant LLM, 16 in flight).
BASELINE_JOBS, QUICK_BASELINE_JOBS = 4_000, 1_500
#: Seconds over which a worker's CPU is measured while it has no job.
IDLE_SECONDS = 10.0


def _run(
    bench: Any, base_url: str, *, in_flight: int, mode: str, jobs: int, latency: float
) -> dict[str, Any]:
    from actors import intent_classify

    processes, threads = LAYOUTS[in_flight][mode] if latency else BASELINE_LAYOUT
    client = bench_redis()
    bench.reset()
    env = bench.env(
        LLM_BASE_URL=base_url,
        LLM_TOKENIZER="estimate",
        LLM_TIMEOUT_SECONDS="60",
        METRICS_ENABLED="false",
    )
    log = bench.logs / f"inflight-{in_flight}-{mode}-{latency:g}s.log"
    with run_workers(
        "actors",
        processes=processes,
        threads=threads,
        env=env,
        log=log,
        queues=("llm.intent",),
        gevent=mode == "gevent",
    ) as workers:
        idle = _idle_cpu(workers)
        cpu_before = workers.cpu()
        for n in range(jobs):
            intent_classify.send(n, 42, {"text": "x"})
        peak_rss = 0.0
        deadline = time.monotonic() + jobs / in_flight * latency * 4 + 120
        while pending(client, "llm.intent") and time.monotonic() < deadline:
            peak_rss = max(peak_rss, workers.rss())
            time.sleep(0.5)
        cpu = workers.cpu() - cpu_before
    done = sorted(r["at"] for r in bench.core.requests if r["method"] == "PATCH")
    # Steady state: from the in_flight-th completion (all slots busy) to the last.
    first = min(in_flight, len(done)) - 1
    steady = len(done) - 1 - first
    span = done[-1] - done[first] if steady > 0 else 0.0
    return {
        "mode": mode,
        "processes": processes,
        "threads": threads,
        "latency_seconds": latency,
        "jobs": jobs,
        "completed": len(done),
        "jobs_per_second": steady / span if span > 0 else 0.0,
        "ideal": in_flight / latency if latency else None,
        "rss_mb": peak_rss,
        "worker_cpu_ms_per_job": cpu * 1000 / max(1, len(done)),
        "idle_cpu_ms_per_second": idle * 1000,
    }


def _idle_cpu(workers: Workers) -> float:
    """The workers' CPU seconds per second with no job (after their start settled)."""
    time.sleep(2)
    before = workers.cpu()
    time.sleep(IDLE_SECONDS)
    return (workers.cpu() - before) / IDLE_SECONDS


def inflight(bench: Any) -> None:
    """Worker CPU per job at each number in flight against the saturated baseline, jobs/s
    against the ideal (in flight / latency), RSS and idle CPU, threads and gevent."""
    from .scenarios import Row

    levels = (16, 256, 1024) if bench.quick else tuple(LAYOUTS)
    rounds = QUICK_ROUNDS if bench.quick else ROUNDS
    baseline_jobs = QUICK_BASELINE_JOBS if bench.quick else BASELINE_JOBS
    results: dict[str, dict[str, Any]] = {}
    with llm_process(0.0) as instant:
        for mode in ("threads", "gevent"):
            results[f"baseline {mode}"] = _run(
                bench, instant.base_url, in_flight=16, mode=mode, jobs=baseline_jobs, latency=0.0
            )
    with llm_process(LATENCY_SECONDS) as slow:
        for in_flight in levels:
            for mode in ("threads", "gevent"):
                jobs = in_flight * rounds
                results[f"{in_flight} {mode}"] = _run(
                    bench,
                    slow.base_url,
                    in_flight=in_flight,
                    mode=mode,
                    jobs=jobs,
                    latency=LATENCY_SECONDS,
                )
    scenario = f"3. in flight, {LATENCY_SECONDS:.0f} s LLM"
    for in_flight in levels:
        for mode in ("threads", "gevent"):
            result = results[f"{in_flight} {mode}"]
            base = results[f"baseline {mode}"]
            layout = f"{result['processes']}x{result['threads']}"
            big = in_flight == 1024
            bench.rows += [
                Row(
                    scenario,
                    f"{in_flight:,} in flight, {mode} {layout}: worker CPU ms/job vs the same "
                    f"saturated at 16 in flight, instant LLM ({base['jobs_per_second']:.0f} "
                    f"jobs/s); idle {result['idle_cpu_ms_per_second']:.0f} ms/s",
                    result["worker_cpu_ms_per_job"],
                    base["worker_cpu_ms_per_job"],
                    "ms",
                    "<= 1.5" if big else "",
                ),
                Row(
                    scenario,
                    f"{in_flight:,} in flight, {mode} {layout}: jobs/s vs ideal "
                    f"({result['completed']}/{result['jobs']} completed, RSS "
                    f"{result['rss_mb']:.0f} MB)",
                    result["jobs_per_second"],
                    result["ideal"],
                    "jobs/s",
                    ">= 0.90 of ideal, <= 400 MB" if big and mode == "gevent" else "",
                ),
            ]
    bench.raw["inflight"] = results
