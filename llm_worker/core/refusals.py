"""What the worker does when Core refuses: log it, count it, and raise the alarm
while Core refuses the worker's credentials.

- :class:`~llm_worker.errors.CoreRefused` (404, 409, 410, 422, 400, 413 and any
  other 4xx but 401, 403, 408, 425, 429) will not change on retry: the job fails
  at once (dead-lettered) and its failure report is not retried either.  Logged at
  ERROR with Core's answer (its first 300 characters).
- :class:`~llm_worker.errors.CoreUnauthorized` (401, 403) means the worker is
  misconfigured: jobs and reports are held (``CORE_UNAUTHORIZED_HOLD_SECONDS``
  between tries, no retry spent), logged at CRITICAL, and ``{p}:core:unauthorized``
  tells ``llm-worker status``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis

from llm_worker import keys
from llm_worker.errors import CoreAPIError
from llm_worker.observability import metrics

logger = logging.getLogger("llm_worker.core")

#: The alarm outlives the last refusal by this many hold intervals.
ALARM_INTERVALS = 3


def note_refused(error: CoreAPIError, *, job_id: Any, request: str) -> None:
    """Log and count a permanent refusal of ``request`` (``result`` or ``report``)."""
    metrics.count_core_refusal("refused", error.status, request)
    action = "the job fails" if request == "result" else "the report is kept as dead"
    logger.error(
        "Core refused the %s of job %s for good (%s, not retried): %s",
        request,
        job_id,
        action,
        error,
    )


def note_unauthorized(
    client: redis.Redis,
    prefix: str,
    error: CoreAPIError,
    *,
    job_id: Any,
    request: str,
    hold_seconds: float,
) -> None:
    """Log and count a refusal of the worker's credentials, and set the alarm that
    ``llm-worker status`` shows."""
    metrics.count_core_refusal("unauthorized", error.status, request)
    logger.critical(
        "Core refuses the worker's credentials (check CORE_API_TOKEN): the %s of job %s "
        "is held and tried again in %gs: %s",
        request,
        job_id,
        hold_seconds,
        error,
    )
    key = keys.core_unauthorized(prefix)
    now = time.time()
    try:
        pipe = client.pipeline(transaction=True)
        pipe.hsetnx(key, "since", now)
        pipe.hset(key, mapping={"last_error": str(error)[:500], "at": now})
        pipe.expire(key, max(60, int(ALARM_INTERVALS * hold_seconds)))
        pipe.execute()
    except redis.RedisError:
        logger.exception("could not record Core's refusal for llm-worker status")


def unauthorized_alarm(client: redis.Redis, prefix: str) -> dict[str, Any] | None:
    """``{"since", "last_error", "at"}`` while Core refuses the worker's credentials."""
    raw = client.hgetall(keys.core_unauthorized(prefix))
    if not raw:
        return None
    data = {k.decode(): v.decode() for k, v in raw.items()}
    return {
        "since": float(data.get("since") or 0),
        "last_error": data.get("last_error", ""),
        "at": float(data.get("at") or 0),
    }
