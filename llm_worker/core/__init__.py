"""The one road to Core: the Core API client, what the worker does when Core refuses,
the report outbox that carries every terminal state (completed, failed, skipped,
expired) and alone writes a job's finished marker, and the notifications published
to the Telegram bot's Redis stream.

May import: the top-level modules, :mod:`llm_worker.observability`,
:mod:`llm_worker.llm`, :mod:`llm_worker.prompts` and :mod:`llm_worker.broker`.
"""
