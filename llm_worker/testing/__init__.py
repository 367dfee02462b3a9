"""Stand-ins for the services this worker talks to: HTTP servers that speak an LLM's
and Core's protocols, for tests, benchmarks and the local commands.

The runtime never imports this package. May import: nothing from :mod:`llm_worker`.
"""
