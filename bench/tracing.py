"""Scenario 12: what tracing costs, with an instant LLM.

The full stack (``intent_classify``) runs the same jobs three ways, in the same run, one
variant at a time in a rotating order:

- ``absent``: the ``opentelemetry`` packages cannot be imported in the worker (a package of
  that name that raises shadows them), as where the ``otel`` extra is not installed;
- ``off``: installed, but no OTLP endpoint set: the no-op path every deployment runs by
  default;
- ``on``: every worker process exports its spans and GenAI metrics over OTLP/HTTP to a
  receiver in the benchmark's process (:class:`~llm_worker.testing.otlp.OTLPReceiver`),
  which decodes and counts them.

Rows: ``off`` against ``absent`` (the no-op path should cost nothing), and ``on`` against
``off`` (what exporting a trace of every job costs), in jobs/s and worker CPU per job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llm_worker.testing.otlp import OTLPReceiver

from .harness import median, run_workers
from .scenarios import GOOD, THROUGHPUT_LAYOUT, Bench, Row, _throughput_run

#: Jobs per run and runs per variant (``--quick``: fewer).
JOBS, REPEATS = 1000, 3
QUICK_JOBS, QUICK_REPEATS = 400, 2
#: The scenario's name in the table.
SCENARIO = "12. tracing, instant LLM ({} processes x {} threads)".format(*THROUGHPUT_LAYOUT)


def _shadow_opentelemetry(folder: Path) -> Path:
    """A folder whose ``opentelemetry`` package raises ``ImportError`` when imported: put
    first on ``PYTHONPATH``, it hides the installed packages from a worker."""
    package = folder / "opentelemetry"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text('raise ImportError("the otel extra is absent")\n')
    return folder


def tracing(bench: Bench) -> None:
    """Scenario 12: jobs/s and worker CPU per job with tracing absent, off and on."""
    import os

    from actors import intent_classify

    jobs, repeats = (QUICK_JOBS, QUICK_REPEATS) if bench.quick else (JOBS, REPEATS)
    receiver = OTLPReceiver(keep=False)
    shadow = _shadow_opentelemetry(bench.logs / "no-otel")
    path = os.environ.get("PYTHONPATH", "")
    variants: dict[str, dict[str, str]] = {
        "absent": {"PYTHONPATH": f"{shadow}:{path}" if path else str(shadow)},
        "off": {},
        "on": {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "500"},
    }
    names = list(variants)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    spans: list[int] = []
    processes, threads = THROUGHPUT_LAYOUT
    try:
        for repeat in range(repeats):
            for name in names[repeat % 3 :] + names[: repeat % 3]:
                bench.reset()
                bench.llm.answers["IntentResult"] = GOOD
                env = bench.env(LLM_TOKENIZER="estimate", METRICS_ENABLED="false", **variants[name])
                with run_workers(
                    "actors",
                    processes=processes,
                    threads=threads,
                    env=env,
                    log=bench.logs / f"tracing-{name}-{repeat}.log",
                    queues=("llm.intent",),
                ) as workers:
                    _throughput_run(bench, intent_classify, "llm.intent", workers, 50)  # warm-up
                    receiver.clear()
                    runs[name].append(
                        _throughput_run(bench, intent_classify, "llm.intent", workers, jobs)
                    )
                if name == "on":
                    spans.append(receiver.span_count)
    finally:
        receiver.close()
    results: dict[str, Any] = {
        name: {
            "jobs_per_second": median([r["jobs_per_second"] for r in variant_runs]),
            "cpu_ms_per_job": median([r["cpu_ms_per_job"] for r in variant_runs]),
            "runs": variant_runs,
        }
        for name, variant_runs in runs.items()
    }
    results["on"]["spans_received"] = spans
    bench.raw["tracing"] = results
    _rows(bench, results, spans, jobs)


def _rows(bench: Bench, results: dict[str, Any], spans: list[int], jobs: int) -> None:
    per_job = median([count / jobs for count in spans]) if spans else 0.0
    for figure, unit in (("jobs_per_second", "jobs/s"), ("cpu_ms_per_job", "ms")):
        label = "jobs/s" if figure == "jobs_per_second" else "worker CPU ms/job"
        bench.rows += [
            Row(
                SCENARIO,
                f"{label}, tracing off (installed, no endpoint) vs absent",
                results["off"][figure],
                results["absent"][figure],
                unit,
                "ratio 1 within noise" if figure == "jobs_per_second" else "",
            ),
            Row(
                SCENARIO,
                f"{label}, tracing on (OTLP/HTTP, {per_job:.1f} spans received a job) vs off",
                results["on"][figure],
                results["off"][figure],
                unit,
            ),
        ]
