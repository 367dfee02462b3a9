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


#: Fleet-wide gauges read from Redis by every worker process (the same value everywhere).
CAPACITY_GAUGES = {
    "llm_slots_in_use": "LLM request slots leased across the fleet.",
    "llm_slots_limit": "LLM_MAX_CONCURRENT_REQUESTS (0: no cap).",
    "llm_requests_last_minute": "LLM requests started in the last minute, fleet-wide.",
    "llm_requests_per_minute_limit": "LLM_REQUESTS_PER_MINUTE (0: no limit).",
    "llm_tokens_last_minute": "LLM tokens used in the last minute, fleet-wide.",
    "llm_tokens_per_minute_limit": "LLM_TOKENS_PER_MINUTE (0: no limit).",
    "llm_capacity_waiting": "Jobs waiting on a worker thread for LLM capacity.",
    "llm_cooldown_seconds": "Seconds left of the fleet's cooldown after a 429.",
    "llm_serving_fallback": "1 while calls go to the fallback LLM.",
}


def enabled() -> bool:
    """Whether :func:`enable` ran in this process."""
    return bool(_metrics)


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
            cost=prom.Counter(
                "llm_cost_usd_total",
                "Cost of the LLM calls of a priced model, in US dollars (LLM_PRICES_FILE).",
                ["provider", "model", "actor"],
                registry=registry,
            ),
            unpriced_tokens=prom.Counter(
                "llm_unpriced_tokens_total",
                "Tokens (prompt and completion) of calls whose model has no price.",
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
            failing_requests=prom.Counter(
                "llm_failing_requests_total",
                "Jobs failed because the LLM kept failing their request while answering probes.",
                ["actor"],
                registry=registry,
            ),
            rate_limited=prom.Counter(
                "llm_rate_limited_total",
                "HTTP 429 answers (each starts or lengthens the fleet's cooldown).",
                registry=registry,
            ),
            capacity_waits=prom.Counter(
                "llm_capacity_waits_total",
                "Jobs re-enqueued to wait for LLM capacity (never a retry).",
                ["actor", "reason"],
                registry=registry,
            ),
            **{
                name: prom.Gauge(name, help_text, registry=registry, multiprocess_mode="max")
                for name, help_text in CAPACITY_GAUGES.items()
            },
            core_refusals=prom.Counter(
                "llm_core_refusals_total",
                "Core's refusals: permanent (refused) or of the worker's credentials "
                "(unauthorized), by HTTP status and what was refused (result, report).",
                ["kind", "status", "request"],
                registry=registry,
            ),
            hook_failures=prom.Counter(
                "llm_hook_failures_total",
                "Middleware hooks that failed around a message, which went back on its "
                "queue, by hook (before, after).",
                ["hook"],
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


def count_cost(*, provider: str, model: str, actor: str, usd: float | None, tokens: int) -> None:
    """Record the cost of one LLM call in US dollars, or its ``tokens`` as unpriced when
    ``usd`` is ``None``."""
    if not _metrics:
        return
    if usd is None:
        _metrics["unpriced_tokens"].labels(provider, model, actor).inc(tokens)
    else:
        _metrics["cost"].labels(provider, model, actor).inc(usd)


def count_invalid(actor: str) -> None:
    """Record an answer that was not the requested JSON."""
    if _metrics:
        _metrics["invalid"].labels(actor).inc()


def count_hook_failure(hook: str) -> None:
    """Record a middleware hook that failed around a message (``before``, ``after``)."""
    if _metrics:
        _metrics["hook_failures"].labels(hook).inc()


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


def count_failing_request(actor: str) -> None:
    """Record a job failed because the LLM kept failing its request, healthy otherwise."""
    if _metrics:
        _metrics["failing_requests"].labels(actor).inc()


def count_rate_limited() -> None:
    """Record a 429 answer."""
    if _metrics:
        _metrics["rate_limited"].inc()


def count_capacity_wait(actor: str, reason: str) -> None:
    """Record a job re-enqueued to wait for capacity (``slots``, ``requests``,
    ``tokens``, ``priority`` or ``cooldown``)."""
    if _metrics:
        _metrics["capacity_waits"].labels(actor, reason).inc()


def set_capacity(snapshot: Any) -> None:
    """Publish a :class:`~llm_worker.fleet.capacity.CapacitySnapshot`."""
    if not _metrics:
        return
    import time

    cooldown = snapshot.cooldown
    values = {
        "llm_slots_in_use": snapshot.slots_in_use,
        "llm_slots_limit": snapshot.max_concurrent,
        "llm_requests_last_minute": snapshot.requests_last_minute,
        "llm_requests_per_minute_limit": snapshot.requests_per_minute_limit,
        "llm_tokens_last_minute": snapshot.tokens_last_minute,
        "llm_tokens_per_minute_limit": snapshot.tokens_per_minute_limit,
        "llm_capacity_waiting": snapshot.waiting_on_threads,
        "llm_cooldown_seconds": max(0.0, cooldown["until"] - time.time()) if cooldown else 0.0,
    }
    for name, value in values.items():
        _metrics[name].set(value)


def set_serving_fallback(serving: bool) -> None:
    """Record whether calls go to the fallback LLM."""
    if _metrics:
        _metrics["llm_serving_fallback"].set(1 if serving else 0)


def count_core_refusal(kind: str, status: int | None, request: str) -> None:
    """Record a refusal of Core (``refused`` or ``unauthorized``) of a job's ``result``
    (the actor's calls) or of a terminal ``report``."""
    if _metrics:
        _metrics["core_refusals"].labels(kind, str(status), request).inc()
