"""Telling a user that their daily LLM token budget is spent, once per UTC day."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from llm_worker import keys
from llm_worker.core.notify import Notifier, Publication
from llm_worker.identity import JobRef

logger = logging.getLogger("llm_worker.quota")

#: The notification's ``message_type``.
QUOTA_MESSAGE = "llm_quota"


def tell_over_budget(
    notifier: Notifier,
    prefix: str,
    job: JobRef,
    *,
    daily_tokens: int,
    resets_in: float,
    now: float | None = None,
) -> str | None:
    """Publish ``llm_quota`` to ``job``'s user unless it was published today; return the
    stream entry id, or ``None`` (told already, or the job has no usable user).

    ``resets_in``: seconds until the budget resets (the UTC day turns).
    """
    if job.user_id is None or job.job_id is None:
        return None
    now = time.time() if now is None else now
    day = int(now // 86_400)
    resets_at = datetime.fromtimestamp((day + 1) * 86_400, UTC).isoformat()
    publication = notifier.prepare(
        user_id=job.user_id,
        job_id=job.job_id,
        message_type=QUOTA_MESSAGE,
        content={"job_type": job.job_type, "daily_tokens": daily_tokens, "resets_at": resets_at},
        job_type=job.job_type,
    )
    once_a_day = keys.notified(prefix, "quota", job.user_id, QUOTA_MESSAGE, day)
    entry = notifier.publish_prepared(Publication(once_a_day, publication.data))
    if entry is not None:
        logger.info(
            "user %s spent the daily budget of %d tokens; jobs wait %.0fs",
            job.user_id,
            daily_tokens,
            resets_in,
        )
    return entry
