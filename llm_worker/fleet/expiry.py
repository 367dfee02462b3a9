"""When a job has waited too long for an unavailable LLM: its age, and its expiry.

A job expires once it is older than ``LLM_UNAVAILABLE_EXPIRY_SECONDS`` (its age
on the producer's clock); :mod:`llm_worker.jobs.expiry` reports it once.
"""

from __future__ import annotations

import time

from llm_worker.identity import AnyMessage


def message_age(message: AnyMessage, *, now: float | None = None) -> float:
    """Seconds since the message was first enqueued."""
    now = time.time() if now is None else now
    return max(0.0, now - message.message_timestamp / 1000)


def is_expired(message: AnyMessage, max_age_seconds: float, *, now: float | None = None) -> bool:
    """Whether the message is older than ``max_age_seconds``
    (``LLM_UNAVAILABLE_EXPIRY_SECONDS``)."""
    return message_age(message, now=now) > max_age_seconds


def expiry_error(age_seconds: float) -> str:
    """The error Core gets for an expired job."""
    return (
        f"expired: waited {age_seconds / 86400:.1f} days ({age_seconds:.0f}s) "
        "for the LLM, which stayed unavailable"
    )
