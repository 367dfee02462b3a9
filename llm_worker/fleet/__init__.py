"""State the whole fleet shares in Redis: the circuit breaker, LLM capacity (slots,
per-minute limits, the 429 cooldown), outage intervals and staleness, a job's age
against its expiry, each process's liveness file, the renewal of the leases a
process holds, and the hourly usage counters (tokens and cost by user, job type and model).

Functions here take the stores and settings they need, never the whole context.

May import: the top-level modules, :mod:`llm_worker.observability`,
:mod:`llm_worker.llm`, :mod:`llm_worker.prompts`, :mod:`llm_worker.broker` and
:mod:`llm_worker.core`.
"""
