"""The LLM: providers, tokens, answer parsing, constrained decoding, images, the
HTTP transport with a whole-call deadline, the models' prices and a job's usage.

Nothing here knows about jobs, Core or Redis.

May import: the top-level modules and :mod:`llm_worker.observability`.
"""
