"""Sending Dramatiq messages to actors this process does not run.

Messages for the git worker (``git_queue``) and back to ``review_chunk``
go through a plain broker of their own: declaring a queue on the worker's
broker would make the worker consume it.
"""

from __future__ import annotations

import threading
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from llm_worker.observability import tracing
from llm_worker.settings import BrokerSettings, broker_settings

_lock = threading.Lock()
_broker: dramatiq.Broker | None = None


def plain_broker(config: BrokerSettings) -> dramatiq.Broker:
    """A broker on ``config``'s URL with no middleware at all."""
    if config.uses_rabbitmq:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=config.effective_broker_url, middleware=[])
    return RedisBroker(url=config.effective_broker_url, middleware=[])


def send_message(
    queue_name: str, actor_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dramatiq.Message[Any]:
    """Enqueue a message for ``actor_name`` on ``queue_name``, in the trace of the active
    span (its context in the message's options)."""
    global _broker
    with _lock:
        if _broker is None:
            _broker = plain_broker(broker_settings())
        broker = _broker
    options: dict[str, Any] = {}
    tracing.inject(options)
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=queue_name, actor_name=actor_name, args=args, kwargs=kwargs, options=options
    )
    return broker.enqueue(message)


def reset_outbound() -> None:
    """Forget the outbound broker (after the broker settings changed)."""
    global _broker
    with _lock:
        if _broker is not None:
            _broker.close()
        _broker = None
