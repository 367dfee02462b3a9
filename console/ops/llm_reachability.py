"""Whether the LLM server answers at all: a cheap HTTP check, cached in Redis.

``llm-worker status`` shows it next to the breaker, which only learns of an
outage when a job or a probe meets it. The check is one ``GET`` of the
provider's model list (no tokens spent, no SDK imported); any HTTP answer
below 500 counts as reachable. The result is shared through Redis for
``LLM_PROBE_INTERVAL_SECONDS``, so health checks polling ``status`` across a
fleet cost the LLM one request per interval.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import requests

from llm_worker import keys
from llm_worker.services import Services
from llm_worker.text import safe_url

#: Seconds to connect, and then to get the answer's headers (at most ``LLM_TIMEOUT_SECONDS``):
#: a server slower than this to list its models counts as not answering.
CHECK_TIMEOUT_SECONDS = 1.0

#: The model-list path of each provider, under its URL.
MODEL_LIST_PATHS = {"openai": "/models", "anthropic": "/v1/models", "ollama": "/api/tags"}


@dataclass(frozen=True)
class Reachability:
    """The outcome of one check.

    Attributes:
      reachable: whether the server answered HTTP below 500.
      url: the URL checked.
      detail: ``HTTP 200 in 0.01s``, ``connection refused``, ``timed out after 3s``...
      checked_at: when, in seconds since the epoch.
    """

    reachable: bool
    url: str
    detail: str
    checked_at: float

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def _describe(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return f"timed out after {CHECK_TIMEOUT_SECONDS:g}s"
    if isinstance(exc, requests.ConnectionError):
        text = str(exc).lower()
        if "refused" in text:
            return "connection refused"
        if "name or service" in text or "resolve" in text or "nodename" in text:
            return "host name not found"
        return "connection failed"
    return type(exc).__name__


def check_llm(svc: Services) -> Reachability:
    """Check now whether the chosen provider's server answers."""
    choice = svc.provider_choice
    url = choice.url.rstrip("/") + MODEL_LIST_PATHS.get(choice.name, "/models")
    timeout = min(CHECK_TIMEOUT_SECONDS, svc.settings.llm_timeout_seconds)
    started = time.monotonic()
    try:
        with requests.get(url, timeout=timeout, stream=True) as response:
            status = response.status_code
    except requests.RequestException as exc:
        return Reachability(False, safe_url(url), _describe(exc), time.time())
    elapsed = time.monotonic() - started
    reachable = status < 500
    detail = f"HTTP {status} in {elapsed:.2f}s" if reachable else f"answers HTTP {status}"
    return Reachability(reachable, safe_url(url), detail, time.time())


def llm_reachability(svc: Services) -> Reachability:
    """The last check of the same URL if younger than ``LLM_PROBE_INTERVAL_SECONDS``,
    else a new one."""
    key = keys.llm_reachability(svc.settings.key_prefix)
    interval = svc.settings.llm_probe_interval_seconds
    cached = svc.redis.get(key)
    if cached:
        try:
            last = Reachability(**json.loads(cached))
        except (TypeError, ValueError):
            last = None
        fresh = last is not None and time.time() - last.checked_at < interval
        if (
            fresh
            and last is not None
            and last.url.startswith(safe_url(svc.provider_choice.url).rstrip("/"))
        ):
            return last
    result = check_llm(svc)
    ttl_ms = max(1, int(interval * 1000))
    svc.redis.set(key, json.dumps(result.as_dict()), px=ttl_ms)
    return result
