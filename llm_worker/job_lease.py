"""One LLM call at a time per job: a lease in Redis keyed by the job's identity.

A job's identity is its job type and ``job_id``.  Core may send the same job
twice (a new message, a new message id); the message that takes the lease
calls the LLM, a second one finds the lease held and waits (see
:class:`~llm_worker.errors.JobInProgress`), then reuses the stored result.
The lease expires on its own (``LLM_TIMEOUT_SECONDS`` + 60 s) should its
holder die.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

from . import keys
from .errors import JobInProgress

#: Seconds a lease outlives the LLM call's own bound.
LEASE_MARGIN_SECONDS = 60.0

#: Take KEYS[1] for ARGV[1] (for ARGV[2] ms) unless another holds it; return that other.
_TAKE = """
local current = redis.call('get', KEYS[1])
if current and current ~= ARGV[1] then
    return current
end
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""

#: Delete KEYS[1] if it still holds ARGV[1].
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


@contextmanager
def job_lease(
    client: redis.Redis,
    prefix: str,
    job_type: str,
    job_id: str | int,
    holder: str,
    *,
    ttl_seconds: float,
) -> Iterator[None]:
    """Hold the LLM lease of job ``(job_type, job_id)`` for ``holder`` (a message id).

    Re-entrant for the same holder (a retry of the same message).

    Raises:
      JobInProgress: another message holds it.
    """
    key = keys.job_lease(prefix, job_type, job_id)
    ttl_ms = max(1, int(ttl_seconds * 1000))
    other = client.eval(_TAKE, 1, key, holder, ttl_ms)
    if other:
        raise JobInProgress(other.decode() if isinstance(other, bytes) else str(other))
    try:
        yield
    finally:
        client.eval(_RELEASE, 1, key, holder)
