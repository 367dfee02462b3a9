"""Names of the Dramatiq message options this service's middleware keeps.

Message options travel with a message when it is re-enqueued, so counters
and timestamps survive delays and holds.
"""

#: Seconds since the epoch when the breaker first held the job back.
HELD_SINCE = "llm_held_since"
#: Server errors (HTTP 5xx) of the job's request so far, each followed by a successful probe.
SERVER_ERRORS = "llm_server_errors"
#: Seconds since the epoch when Core first refused the worker's credentials for the job.
CORE_HELD_SINCE = "llm_core_held_since"
#: Invalid-answer retries done so far.
INVALID_RETRIES = "llm_invalid_retries"
#: Seconds since the epoch of the job's first invalid answer.
FIRST_ATTEMPT_AT = "llm_first_attempt_at"
#: The last invalid answer and what was wrong with it: ``{"answer", "problem"}``.
FEEDBACK = "llm_feedback"
#: Seconds since the epoch when an operator requeued the dead-lettered message.
REQUEUED_AT = "llm_requeued_at"
#: Set once the job passed the send-time check (kept by every re-enqueued copy), or when an
#: operator requeued it (it is checked at pick-up either way).
CHECKED = "llm_checked"
#: Times the job waited for another message of the same job holding its LLM lease.
LEASE_WAITS = "llm_lease_waits"
#: Times the job was re-enqueued to wait for LLM capacity (never a retry).
CAPACITY_WAITS = "llm_capacity_waits"
#: Dramatiq's own counter of ordinary retries.
RETRIES = "retries"


def was_requeued(options: dict[str, object]) -> bool:
    """Whether a message is a retry, a hold, a wait or an operator's requeue, not a first
    delivery."""
    names = (
        HELD_SINCE,
        CORE_HELD_SINCE,
        INVALID_RETRIES,
        RETRIES,
        REQUEUED_AT,
        CAPACITY_WAITS,
        LEASE_WAITS,
    )
    return any(options.get(name) for name in names)
