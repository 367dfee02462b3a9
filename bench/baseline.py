"""Baseline actors for the benchmarks: ``dramatiq bench.baseline``.

- ``plain_intent`` runs the very function of ``intent_classify`` on a broker
  with only Dramatiq's default middleware (queue ``bench.intent``).
- ``noop`` does nothing (queue ``bench.noop``).
- ``noop_notify`` only publishes a notification (queue ``bench.notify``).
- ``bare_io`` does, with no code of this service, the I/O an ``intent_classify``
  job did before its Redis bookkeeping was batched: five Redis round trips
  (finished check, stored result read and write, notification script, finished
  mark), the LLM call through the ``openai`` SDK's untyped ``post`` and the Core
  ``PATCH`` through a pooled ``requests`` session (queue ``bench.bare``).

Importing :mod:`actors` here would declare the service's actors on its own
broker; the function is taken from the module without using that broker.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from typing import Any

import dramatiq
import httpx
import openai
import redis
import requests
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import default_middleware

from llm_worker.observability.logs import CONTENT_LOGGERS
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


_NOTIFY_ONCE = """
if redis.call('set', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
    return redis.call('xadd', KEYS[2], '*', 'data', ARGV[2])
end
return false
"""


@cache
def _bare_clients() -> tuple[redis.Redis, Any, openai.OpenAI, requests.Session]:
    config = services().settings
    client = redis.Redis.from_url(config.redis_url)
    llm = openai.OpenAI(base_url=config.llm_base_url, api_key="none", max_retries=0)
    session = requests.Session()
    session.trust_env = False
    return client, client.register_script(_NOTIFY_ONCE), llm, session


@dramatiq.actor(queue_name="bench.bare", max_retries=0, broker=broker)
def bare_io(job_id: int, user_id: int, payload: dict[str, Any]) -> None:
    """The I/O of an ``intent_classify`` job, without this service's code."""
    client, notify_once, llm, session = _bare_clients()
    config = services().settings
    message_id = f"bare-{job_id}"
    client.get(f"llmw:finished:{message_id}")
    client.get(f"llmw:result:{message_id}:IntentResult")
    body = {
        "model": config.llm_text_model,
        "messages": [{"role": "user", "content": payload["text"]}],
        "max_tokens": 64,
        "response_format": {"type": "json_schema", "json_schema": {"name": "IntentResult"}},
    }
    answer = llm.post("/chat/completions", cast_to=httpx.Response, body=body).json()
    result = json.loads(answer["choices"][0]["message"]["content"])
    client.set(f"llmw:result:{message_id}:IntentResult", json.dumps(result), ex=86400)
    response = session.patch(
        f"{config.core_api_url}/jobs/{job_id}",
        json={"status": "completed", "result": result, "error": None},
        timeout=10,
    )
    response.raise_for_status()
    data = {"user_id": user_id, "job_id": job_id, "message_type": "noop", "content": result}
    notify_once(keys=[f"llmw:notified:{job_id}", config.notify_stream], args=[60, json.dumps(data)])
    client.set(f"llmw:finished:{message_id}", "completed", ex=60)
