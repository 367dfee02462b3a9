"""Expiring a job once: Core gets ``status: failed`` with an error saying it waited too
long for the LLM, the user an ``llm_expiry`` notification, and the message leaves the
broker.  A claim key per message makes this happen once, whichever sweeper or worker
sees it first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llm_worker import keys
from llm_worker.fleet.expiry import expiry_error, message_age
from llm_worker.identity import AnyMessage, message_key
from llm_worker.jobs.kind import JobKind

if TYPE_CHECKING:  # the context is handed in; it imports this package
    from llm_worker.services import Services

#: How long an expiry claim is remembered, in seconds (longer than any redelivery).
CLAIM_TTL_SECONDS = 30 * 24 * 3600


def claim_and_expire(
    svc: Services, message: AnyMessage, kind: JobKind, error: str | None = None
) -> bool:
    """Expire the job once: return ``True`` if this call did it, ``False`` if already done.

    ``error`` is what Core gets (by default :func:`expiry_error` of the job's age).

    The claim is taken before Core and the user are told, so two sweepers
    never both notify; if telling them fails, the claim is released so the
    next sweep tries again.
    """
    claim = keys.expired_claim(svc.settings.key_prefix, message_key(message))
    if not svc.redis.set(claim, "1", nx=True, ex=CLAIM_TTL_SECONDS):
        return False
    try:
        kind.expired(svc, message, error or expiry_error(message_age(message)))
    except Exception:
        svc.redis.delete(claim)
        raise
    return True
