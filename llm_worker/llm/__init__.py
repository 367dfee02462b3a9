"""The LLM: providers, tokens, answer parsing, constrained decoding, images and the
HTTP transport with a whole-call deadline.

Nothing here knows about jobs, Core or Redis.

May import: the top-level modules and :mod:`llm_worker.observability`.
"""
