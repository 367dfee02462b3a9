"""Dramatiq's own ``RedisBroker``, unchanged, behind Sentinel: the fleet's comparison.

``dramatiq bench.fleet_stock`` runs one actor, :func:`stock_job`, on a stock
``dramatiq.brokers.redis.RedisBroker`` whose client is redis-py's
``Sentinel(...).master_for(...)`` (Dramatiq's broker takes no Sentinel URL, but takes a
client).  The actor does what a job of the product does, as plainly as Dramatiq allows:
it asks the fleet's fake LLM (the job id in the prompt, so the LLM records it), reports
the answer to the fake Core (``PATCH /jobs/<id>``) and adds a notification to the
stream, so the harness counts its jobs as it counts the product's.  No job lease, no
stored result: a message delivered twice is run twice.

Environment: ``STOCK_SENTINELS`` (``host:port,host:port,...``), ``STOCK_SERVICE``,
``LLM_BASE_URL``, ``CORE_API_URL``.
"""

from __future__ import annotations

import json
import os

import dramatiq
import httpx
from dramatiq.brokers.redis import RedisBroker
from redis.sentinel import Sentinel

from .fleet_agent import STOCK_QUEUE, job_text

#: The stream the product's notifications go to, which the harness counts.
NOTIFY_STREAM = "notify:telegram"
#: Seconds of every Redis, LLM and Core call (the product's fleet settings).
REDIS_TIMEOUT = 5.0
LLM_TIMEOUT = 20.0
CORE_TIMEOUT = 5.0


def _sentinels() -> list[tuple[str, int]]:
    """The sentinels of ``STOCK_SENTINELS``."""
    found = []
    for item in os.environ.get("STOCK_SENTINELS", "127.0.0.1:26379").split(","):
        host, _, port = item.rpartition(":")
        found.append((host, int(port)))
    return found


sentinel = Sentinel(
    _sentinels(),
    socket_timeout=REDIS_TIMEOUT,
    socket_connect_timeout=REDIS_TIMEOUT,
)
client = sentinel.master_for(
    os.environ.get("STOCK_SERVICE", "llmw-primary"),
    socket_timeout=REDIS_TIMEOUT,
    socket_connect_timeout=REDIS_TIMEOUT,
)
#: Dramatiq's broker; its heartbeat timeout is the product's fleet setting (10 s).
broker = RedisBroker(client=client, heartbeat_timeout=10_000)
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=STOCK_QUEUE, max_retries=20, min_backoff=1_000, max_backoff=10_000)
def stock_job(job_id: int) -> None:
    """Ask the LLM about job ``job_id``, report its answer to Core, notify."""
    base = os.environ["LLM_BASE_URL"].rstrip("/")
    reply = httpx.post(
        f"{base}/chat/completions",
        json={"model": "mistral", "messages": [{"role": "user", "content": job_text(job_id)}]},
        timeout=LLM_TIMEOUT,
    )
    reply.raise_for_status()
    result = json.loads(reply.json()["choices"][0]["message"]["content"])
    core = os.environ["CORE_API_URL"].rstrip("/")
    httpx.patch(
        f"{core}/jobs/{job_id}",
        json={"status": "completed", "result": result},
        timeout=CORE_TIMEOUT,
    ).raise_for_status()
    client.xadd(NOTIFY_STREAM, {"data": json.dumps({"job_id": job_id})})
