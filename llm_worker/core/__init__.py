"""Core and the user: the Core API client, what the worker does when Core refuses,
the report outbox that carries every terminal state to Core, and the notifications
published to the Telegram bot's Redis stream.

May import: the top-level modules, :mod:`llm_worker.observability` and
:mod:`llm_worker.llm`.
"""
