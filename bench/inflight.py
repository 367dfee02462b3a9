"""Scenario 3: a slow (8 s) LLM with hundreds of requests in flight, threads against gevent."""

from __future__ import annotations

import time
from typing import Any

from .fake_process import llm_process
from .harness import bench_redis, cpu_seconds, pending, run_workers

#: Seconds the fake LLM takes per answer: a slow model, where in-flight capacity matters.
LATENCY_SECONDS = 8.0
#: Worker layout (processes, threads or greenlets) per number of requests in flight.
#: Threads: four processes (one process of many threads contends on its GIL).
#: gevent: at most 512 greenlets per process, under the openai SDK's 1,000
#: connections per client.
LAYOUTS: dict[int, dict[str, tuple[int, int]]] = {
    256: {"threads": (4, 64), "gevent": (1, 256)},
    512: {"threads": (4, 128), "gevent": (1, 512)},
    1024: {"threads": (4, 256), "gevent": (2, 512)},
}


def _run(bench: Any, base_url: str, llm_pid: int, in_flight: int, mode: str) -> dict[str, Any]:
    from actors import intent_classify

    processes, threads = LAYOUTS[in_flight][mode]
    rounds = 2 if bench.quick else 3
    jobs = in_flight * rounds
    client = bench_redis()
    bench.reset()
    env = bench.env(LLM_BASE_URL=base_url, LLM_TOKENIZER="estimate", LLM_TIMEOUT_SECONDS="60")
    log = bench.logs / f"inflight-{in_flight}-{mode}.log"
    with run_workers(
        "actors",
        processes=processes,
        threads=threads,
        env=env,
        log=log,
        queues=("llm.intent",),
        gevent=mode == "gevent",
    ) as workers:
        cpu_before, llm_cpu_before = workers.cpu(), cpu_seconds([llm_pid])
        for n in range(jobs):
            intent_classify.send(n, 42, {"text": "x"})
        peak_rss = 0.0
        deadline = time.monotonic() + rounds * LATENCY_SECONDS * 4 + 60
        while pending(client, "llm.intent") and time.monotonic() < deadline:
            peak_rss = max(peak_rss, workers.rss())
            time.sleep(0.5)
        cpu = workers.cpu() - cpu_before
        llm_cpu = cpu_seconds([llm_pid]) - llm_cpu_before
    done = sorted(r["at"] for r in bench.core.requests if r["method"] == "PATCH")
    steady = len(done) - in_flight
    rate = steady / (done[-1] - done[in_flight - 1]) if steady > 0 else 0.0
    return {
        "mode": mode,
        "processes": processes,
        "threads": threads,
        "jobs": jobs,
        "completed": len(done),
        "jobs_per_second": rate,
        "ideal": in_flight / LATENCY_SECONDS,
        "rss_mb": peak_rss,
        "worker_cpu_ms_per_job": cpu * 1000 / max(1, len(done)),
        "llm_cpu_ms_per_job": llm_cpu * 1000 / max(1, len(done)),
    }


def inflight(bench: Any) -> None:
    """Jobs/s against the ideal (in flight / latency), worker RSS and CPU, at 256, 512
    and 1,024 requests in flight, threads against gevent, the LLM in its own process."""
    from .scenarios import Row

    levels = (256, 1024) if bench.quick else (256, 512, 1024)
    results: dict[str, dict[str, Any]] = {}
    with llm_process(LATENCY_SECONDS) as llm:
        for in_flight in levels:
            for mode in ("threads", "gevent"):
                result = _run(bench, llm.base_url, llm.process.pid, in_flight, mode)
                results[f"{in_flight} {mode}"] = result
                target = ">= 0.90 of ideal, < 400 MB" if in_flight == 1024 else ""
                bench.rows.append(
                    Row(
                        f"3. LLM-bound, {LATENCY_SECONDS:.0f} s LLM",
                        f"{in_flight} in flight, {mode} {result['processes']}x"
                        f"{result['threads']} (RSS {result['rss_mb']:.0f} MB, "
                        f"CPU {result['worker_cpu_ms_per_job']:.1f} ms/job)",
                        result["jobs_per_second"],
                        result["ideal"],
                        "jobs/s",
                        target,
                    )
                )
    bench.raw["inflight"] = results
