"""How long a ``Retry-After`` may make the fleet wait, and the cooldown after a 429.

A server's ``Retry-After`` is honoured up to ``LLM_RETRY_AFTER_MAX_SECONDS``
(default 300 s); past the cap the fleet waits the cap, logs the wait the server
asked for, and tries again (a further 429 starts a further cooldown).
"""

from __future__ import annotations

import logging

from llm_worker.errors import LLMUnavailable
from llm_worker.fleet.capacity import CapacityGate
from llm_worker.observability import metrics
from llm_worker.settings import Settings

logger = logging.getLogger("llm_worker.cooldown")


def capped_retry_after(config: Settings, retry_after: float | None) -> float | None:
    """``retry_after`` cut to ``LLM_RETRY_AFTER_MAX_SECONDS`` (``None`` stays ``None``)."""
    if retry_after is None:
        return None
    cap = config.llm_retry_after_max_seconds
    if retry_after > cap:
        logger.warning(
            "the LLM asked to wait %.0fs (Retry-After); waiting LLM_RETRY_AFTER_MAX_SECONDS=%.0fs",
            retry_after,
            cap,
        )
        return cap
    return retry_after


def cooldown_seconds(config: Settings, exc: LLMUnavailable) -> float:
    """The cooldown a 429 imposes: its ``Retry-After`` within the cap, else
    ``LLM_COOLDOWN_SECONDS``."""
    capped = capped_retry_after(config, exc.retry_after)
    return config.llm_cooldown_seconds if capped is None else capped


def start_cooldown(config: Settings, capacity: CapacityGate, exc: LLMUnavailable) -> float:
    """Start the fleet's cooldown after a 429 through ``capacity``; return its length in
    seconds."""
    seconds = cooldown_seconds(config, exc)
    metrics.count_rate_limited()
    if seconds > 0 and capacity.cool_down(seconds, str(exc)):
        logger.warning("LLM rate-limited: the fleet cools down for %.1fs: %s", seconds, exc)
    return seconds
