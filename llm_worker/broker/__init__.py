"""Dramatiq's brokers as this service runs them: fail-safe Redis and RabbitMQ brokers,
the Redis consumer that loses nothing, Dramatiq's Redis key layout written down once,
and sending to actors this process does not run.

Each class that reworks a Dramatiq internal names, in its docstring, the upstream
behaviour it works around.

May import: the top-level modules and :mod:`llm_worker.observability`.
"""
