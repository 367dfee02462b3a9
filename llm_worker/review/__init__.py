"""The code-review loop: diff chunks, conversations, tool calls and comments.

May import: every layer below it, :mod:`llm_worker.jobs` included; the context
(:mod:`llm_worker.services`) is handed in and named for type checks only.
"""
