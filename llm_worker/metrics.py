"""This service's Prometheus metrics, beside Dramatiq's own.

They live in the same multiprocess registry as Dramatiq's ``Prometheus``
middleware and are served by its exposition server (``dramatiq_prom_port``,
default 9191).  Until :func:`enable` runs (at worker process boot, when
metrics are on) every function here does nothing.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_metrics: dict[str, Any] = {}

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, float("inf"))


def enable() -> None:
    """Create the metrics (``PROMETHEUS_MULTIPROC_DIR`` must be set already)."""
    import prometheus_client as prom

    with _lock:
        if _metrics:
            return
        registry = prom.CollectorRegistry()
        labels = ["provider", "model", "actor", "outcome"]
        _metrics.update(
            requests=prom.Counter(
                "llm_requests_total", "LLM requests by outcome.", labels, registry=registry
            ),
            latency=prom.Histogram(
                "llm_request_duration_seconds",
                "LLM request latency.",
                labels,
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            prompt_tokens=prom.Counter(
                "llm_prompt_tokens_total",
                "Prompt tokens sent.",
                ["provider", "model", "actor"],
                registry=registry,
            ),
            completion_tokens=prom.Counter(
                "llm_completion_tokens_total",
                "Completion tokens received.",
                ["provider", "model", "actor"],
                registry=registry,
            ),
            invalid=prom.Counter(
                "llm_invalid_responses_total",
                "Answers that were not the requested JSON.",
                ["actor"],
                registry=registry,
            ),
            breaker=prom.Gauge(
                "llm_breaker_open",
                "1 while the circuit breaker is open.",
                registry=registry,
                multiprocess_mode="max",
            ),
            probes=prom.Counter(
                "llm_probes_total", "Probes of an unavailable LLM.", ["outcome"], registry=registry
            ),
            core_refusals=prom.Counter(
                "llm_core_refusals_total",
                "Core's refusals: permanent (refused) or of the worker's credentials "
                "(unauthorized), by HTTP status and what was refused (result, report).",
                ["kind", "status", "request"],
                registry=registry,
            ),
            jobs=prom.Counter(
                "llm_jobs_total",
                "Job outcomes (completed, failed, skipped, expired, held, retrying).",
                ["actor", "outcome"],
                registry=registry,
            ),
        )


def observe_request(
    *,
    provider: str,
    model: str,
    actor: str,
    outcome: str,
    seconds: float,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
) -> None:
    """Record one LLM request."""
    if not _metrics:
        return
    _metrics["requests"].labels(provider, model, actor, outcome).inc()
    _metrics["latency"].labels(provider, model, actor, outcome).observe(seconds)
    if prompt_tokens or completion_tokens:
        _metrics["prompt_tokens"].labels(provider, model, actor).inc(prompt_tokens)
        _metrics["completion_tokens"].labels(provider, model, actor).inc(completion_tokens)


def count_invalid(actor: str) -> None:
    """Record an answer that was not the requested JSON."""
    if _metrics:
        _metrics["invalid"].labels(actor).inc()


def count_job(actor: str, outcome: str) -> None:
    """Record a job outcome."""
    if _metrics:
        _metrics["jobs"].labels(actor, outcome).inc()


def set_breaker_open(is_open: bool) -> None:
    """Record the breaker's state."""
    if _metrics:
        _metrics["breaker"].set(1 if is_open else 0)


def count_probe(outcome: str) -> None:
    """Record a probe (``ok`` or ``failed``)."""
    if _metrics:
        _metrics["probes"].labels(outcome).inc()


def count_core_refusal(kind: str, status: int | None, request: str) -> None:
    """Record a refusal of Core (``refused`` or ``unauthorized``) of a job's ``result``
    (the actor's calls) or of a terminal ``report``."""
    if _metrics:
        _metrics["core_refusals"].labels(kind, str(status), request).inc()
