"""Baseline actors for the benchmarks: ``dramatiq bench.baseline``.

- ``plain_intent`` runs the very function of ``intent_classify`` on a broker
  with only Dramatiq's default middleware (queue ``bench.intent``).
- ``noop`` does nothing (queue ``bench.noop``).
- ``noop_notify`` only publishes a notification (queue ``bench.notify``).

Importing :mod:`actors` here would declare the service's actors on its own
broker; the function is taken from the module without using that broker.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import default_middleware

from llm_worker.logs import CONTENT_LOGGERS
from llm_worker.services import services
from llm_worker.settings import broker_settings

# The same logging policy as the service: the HTTP clients' per-request INFO lines
# would otherwise make the baseline pay for logging the service does not do.
for _name in CONTENT_LOGGERS:
    logging.getLogger(_name).setLevel(logging.WARNING)

broker = RedisBroker(
    url=broker_settings().effective_broker_url, middleware=[m() for m in default_middleware]
)
dramatiq.set_broker(broker)


def _intent_function() -> Any:
    import actors.intent

    return actors.intent.intent_classify.fn


@dramatiq.actor(queue_name="bench.intent", max_retries=0, broker=broker)
def plain_intent(job_id: int, user_id: int, payload: dict[str, Any]) -> None:
    """``intent_classify``'s body without this service's middleware."""
    _intent_function()(job_id, user_id, payload)


@dramatiq.actor(queue_name="bench.noop", max_retries=0, broker=broker)
def noop(job_id: int, user_id: int, payload: dict[str, Any]) -> None:
    """Nothing at all."""


@dramatiq.actor(queue_name="bench.notify", max_retries=0, broker=broker)
def noop_notify(job_id: int, user_id: int, payload: dict[str, Any]) -> None:
    """Publish a notification and nothing else."""
    data = {"user_id": user_id, "job_id": job_id, "message_type": "noop", "content": {}}
    services().redis.xadd(services().settings.notify_stream, {"data": json.dumps(data)})
