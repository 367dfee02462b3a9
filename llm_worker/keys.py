"""Names of this service's own Redis keys (the broker's keys are Dramatiq's).

Every name starts with ``KEY_PREFIX`` (default ``llmw``), written ``{p}`` here.  An
identifier that comes from a message (a job, review request or chunk id) is written as
one segment by :func:`segment`, so no two different ids, or pairs of ids, give one key.
"""

from __future__ import annotations


def segment(value: str | int) -> str:
    """``value`` as one segment of a key: ``%`` and ``:`` percent-encoded, so the segment
    holds no separator and decodes to exactly one id (ids without either are unchanged)."""
    return str(value).replace("%", "%25").replace(":", "%3A")


def breaker(prefix: str) -> str:
    """``{p}:breaker``: hash of the circuit breaker's state while it is open
    (``since``, ``last_error``, ``next_probe_at``); absent while closed."""
    return f"{prefix}:breaker"


def breaker_probe_lock(prefix: str) -> str:
    """``{p}:breaker:probe``: held by the one process probing the LLM, for one interval."""
    return f"{prefix}:breaker:probe"


def outages(prefix: str) -> str:
    """``{p}:outages``: sorted set of past outages, member ``start:end``, score ``end``
    (seconds since the epoch); subtracted from a job's age by the stale check."""
    return f"{prefix}:outages"


def notified(
    prefix: str, job_type: str, job_id: str | int, message_type: str, discriminator: str | int
) -> str:
    """``{p}:notified:{job_type}:{job_id}:{message_type}:{n}``: set when that notification
    was published, so a redelivered job never publishes it again."""
    return f"{prefix}:notified:{job_type}:{segment(job_id)}:{message_type}:{segment(discriminator)}"


def job_result(prefix: str, job_type: str, result_name: str, job_id: str | int) -> str:
    """``{p}:result:{job_type}:{result}:{job_id}``: a job's valid LLM result and the usage
    it cost (JSON), kept so that a retry (Core failing) or a second message for the same
    job (Core resending it) reuses it instead of asking the model again."""
    return f"{prefix}:result:{job_type}:{result_name}:{segment(job_id)}"


def job_lease(prefix: str, job_type: str, job_id: str | int) -> str:
    """``{p}:lease:{job_type}:{job_id}``: held (value: the message id) by the one message of a
    job that is calling the LLM, so a second message for it waits instead of calling too."""
    return f"{prefix}:lease:{job_type}:{segment(job_id)}"


def finished(prefix: str, message_id: str) -> str:
    """``{p}:finished:{message_id}``: the job's terminal state, set once Core and the user
    were told of a completed job, or with the report stored in the outbox for any other end,
    so a redelivery of a finished job does nothing."""
    return f"{prefix}:finished:{message_id}"


def expired_claim(prefix: str, message_id: str) -> str:
    """``{p}:expired:{message_id}``: set once when a job is expired, so it is
    expired and notified only once however many sweepers or workers see it."""
    return f"{prefix}:expired:{message_id}"


def outbox(prefix: str) -> str:
    """``{p}:outbox``: hash, message id -> a terminal job report (JSON) not yet accepted
    by Core."""
    return f"{prefix}:outbox"


def outbox_due(prefix: str) -> str:
    """``{p}:outbox:due``: sorted set, message id -> when to try delivering its report next."""
    return f"{prefix}:outbox:due"


def outbox_dead(prefix: str) -> str:
    """``{p}:outbox:dead``: hash, message id -> a report Core refused ``JOB_MAX_RETRIES``
    times, kept for an operator."""
    return f"{prefix}:outbox:dead"


def outbox_dead_since(prefix: str) -> str:
    """``{p}:outbox:dead:since``: sorted set, message id -> when its report went dead, so
    dead reports older than ``OUTBOX_DEAD_TTL_SECONDS`` are dropped."""
    return f"{prefix}:outbox:dead:since"


def llm_reachability(prefix: str) -> str:
    """``{p}:llm:reachability``: the last cheap check of whether the LLM server answers
    (JSON), shared by every ``llm-worker status`` for ``LLM_PROBE_INTERVAL_SECONDS``."""
    return f"{prefix}:llm:reachability"


def breaker_fallback(prefix: str) -> str:
    """``{p}:breaker:fallback``: the fallback LLM's breaker state, like ``{p}:breaker``."""
    return f"{prefix}:breaker:fallback"


def breaker_fallback_probe_lock(prefix: str) -> str:
    """``{p}:breaker:fallback:probe``: held by the one process probing the fallback LLM."""
    return f"{prefix}:breaker:fallback:probe"


def capacity_slots(prefix: str) -> str:
    """``{p}:capacity:slots``: sorted set of leased LLM request slots, member a lease id,
    score the lease's expiry (milliseconds since the epoch)."""
    return f"{prefix}:capacity:slots"


def capacity_waiting(prefix: str) -> str:
    """``{p}:capacity:waiting``: sorted set of jobs waiting on a thread for capacity,
    member a lease id, score its priority (lower runs first)."""
    return f"{prefix}:capacity:waiting"


def capacity_waiting_seen(prefix: str) -> str:
    """``{p}:capacity:waiting:seen``: sorted set, lease id -> when that waiter last asked
    (milliseconds); waiters silent for a second are forgotten."""
    return f"{prefix}:capacity:waiting:seen"


def capacity_slot_shares(prefix: str) -> str:
    """``{p}:capacity:slot_shares``: hash, lease id of a held slot -> the share (user or
    review request) it was granted to; kept with the slot."""
    return f"{prefix}:capacity:slot_shares"


def capacity_share_slots(prefix: str) -> str:
    """``{p}:capacity:share_slots``: hash, share -> slots it holds now (no field at 0)."""
    return f"{prefix}:capacity:share_slots"


def capacity_waiter_shares(prefix: str) -> str:
    """``{p}:capacity:waiter_shares``: hash, lease id of a waiter -> its share; kept with
    the waiter."""
    return f"{prefix}:capacity:waiter_shares"


def capacity_share_waiters(prefix: str) -> str:
    """``{p}:capacity:share_waiters``: hash, share -> jobs of it waiting on a thread now
    (no field at 0)."""
    return f"{prefix}:capacity:share_waiters"


def capacity_quota(prefix: str, day: int, user: str) -> str:
    """``{p}:capacity:quota:{day}:{user}``: tokens charged to one user on one UTC day
    (days since the epoch); expires a day after that day ends."""
    return f"{prefix}:capacity:quota:{day}:{segment(user)}"


def capacity_bucket(prefix: str, name: str) -> str:
    """``{p}:capacity:bucket:{requests|tokens}``: hash of a token bucket (``level``,
    ``at`` in milliseconds) of the per-minute limits."""
    return f"{prefix}:capacity:bucket:{name}"


def capacity_cooldown(prefix: str) -> str:
    """``{p}:capacity:cooldown``: hash (``until``, ``reason``) present while the fleet
    waits out a 429; it expires with the cooldown."""
    return f"{prefix}:capacity:cooldown"


def capacity_cooldowns(prefix: str) -> str:
    """``{p}:capacity:cooldowns``: sorted set of past and current cooldowns, member
    ``{start}:{until}`` (seconds since the epoch), score ``until``; the stale check
    discounts them like outages."""
    return f"{prefix}:capacity:cooldowns"


def capacity_usage(prefix: str, window: int) -> str:
    """``{p}:capacity:usage:{window}``: hash (``requests``, ``tokens``) of the LLM calls
    started in one 10-second window, kept 90 seconds, for ``llm-worker status``."""
    return f"{prefix}:capacity:usage:{window}"


def usage_hour(prefix: str, hour: str) -> str:
    """``{p}:usage:{hour}``: hash of the tokens and cost (micro-dollars) of the LLM calls of
    one UTC hour (``hour`` is ``YYYYMMDDHH``), by user, job type and model, read by
    ``llm-worker usage``; its fields are named in :mod:`llm_worker.fleet.usage_counters`,
    each id written as one segment.  It expires ``USAGE_RETENTION_DAYS`` after its hour."""
    return f"{prefix}:usage:{segment(hour)}"


def core_unauthorized(prefix: str) -> str:
    """``{p}:core:unauthorized``: hash (``since``, ``last_error``, ``at``) present while Core
    refuses the worker's credentials (401, 403); it expires a few hold intervals after the
    last refusal."""
    return f"{prefix}:core:unauthorized"


def review_conversation(prefix: str, review_request_id: str | int, chunk_id: str | int) -> str:
    """``{p}:review:conversation:{review_request_id}:{chunk_id}``: one chunk's review
    conversation, a JSON list of messages (see :mod:`llm_worker.review.conversation`); it
    lives ``REVIEW_CONVERSATION_TTL_SECONDS`` after its last turn."""
    return f"{prefix}:review:conversation:{segment(review_request_id)}:{segment(chunk_id)}"


def review_conversation_lock(prefix: str, review_request_id: str | int, chunk_id: str | int) -> str:
    """``{p}:review:lock:{review_request_id}:{chunk_id}``: held by the one turn of a chunk's
    conversation under way, so a duplicate message waits and then sees its result."""
    return f"{prefix}:review:lock:{segment(review_request_id)}:{segment(chunk_id)}"


def review_comments(prefix: str, review_request_id: str | int) -> str:
    """``{p}:review:comments:{review_request_id}``: list of what the reference git worker
    received for a review, one JSON record per chunk (``chunk_id``, ``comments``,
    ``summary``, ``error``)."""
    return f"{prefix}:review:comments:{segment(review_request_id)}"


def review_cancelled(prefix: str, review_request_id: str | int) -> str:
    """``{p}:review:cancelled:{review_request_id}``: present once a review was given up (the
    ``llm-worker review`` command timed out); its messages still queued are dropped
    instead of calling the LLM.  It lives ``REVIEW_CONVERSATION_TTL_SECONDS``."""
    return f"{prefix}:review:cancelled:{segment(review_request_id)}"
