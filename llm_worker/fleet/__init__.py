"""State the whole fleet shares in Redis: the circuit breaker, LLM capacity (slots,
per-minute limits, the 429 cooldown), staleness and expiry, the sweep, and each
process's liveness file.

May import: the top-level modules, :mod:`llm_worker.observability`,
:mod:`llm_worker.llm` and :mod:`llm_worker.broker`.
"""
