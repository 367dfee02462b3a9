"""Expiring jobs that waited too long for an unavailable LLM.

A job expires once it is older than ``LLM_UNAVAILABLE_EXPIRY_SECONDS``:
Core gets ``status: failed`` with an error saying so, the user an
``llm_expiry`` notification, and the message leaves the broker.  A claim key
per message makes this happen once, whichever sweeper or worker sees it first.
"""

from __future__ import annotations

import time

from llm_worker import keys
from llm_worker.jobs.kind import AnyMessage, JobKind
from llm_worker.services import Services

#: How long an expiry claim is remembered, in seconds (longer than any redelivery).
CLAIM_TTL_SECONDS = 30 * 24 * 3600


def message_age(message: AnyMessage, *, now: float | None = None) -> float:
    """Seconds since the message was first enqueued."""
    now = time.time() if now is None else now
    return max(0.0, now - message.message_timestamp / 1000)


def is_expired(svc: Services, message: AnyMessage, *, now: float | None = None) -> bool:
    """Whether the message is older than ``LLM_UNAVAILABLE_EXPIRY_SECONDS``."""
    return message_age(message, now=now) > svc.settings.llm_unavailable_expiry_seconds


def expiry_error(age_seconds: float) -> str:
    """The error Core gets for an expired job."""
    return (
        f"expired: waited {age_seconds / 86400:.1f} days ({age_seconds:.0f}s) "
        "for the LLM, which stayed unavailable"
    )


def claim_and_expire(
    svc: Services, message: AnyMessage, kind: JobKind, error: str | None = None
) -> bool:
    """Expire the job once: return ``True`` if this call did it, ``False`` if already done.

    ``error`` is what Core gets (by default :func:`expiry_error` of the job's age).

    The claim is taken before Core and the user are told, so two sweepers
    never both notify; if telling them fails, the claim is released so the
    next sweep tries again.
    """
    claim = keys.expired_claim(svc.settings.key_prefix, message.message_id)
    if not svc.redis.set(claim, "1", nx=True, ex=CLAIM_TTL_SECONDS):
        return False
    try:
        kind.expired(svc, message, error or expiry_error(message_age(message)))
    except Exception:
        svc.redis.delete(claim)
        raise
    return True
