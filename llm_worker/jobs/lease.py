"""One LLM call at a time per job: a lease in Redis keyed by the job's identity.

A job's identity is its job type and ``job_id``.  Core may send the same job
twice (a new message, a new message id), and one message may be delivered twice
(a host back from a partition or a freeze runs its copy while another host runs
the redelivered one).  The lease's holder is one delivery
(:func:`~llm_worker.identity.delivery_key`): the delivery that takes the lease
calls the LLM, any other finds the lease held and waits (see
:class:`~llm_worker.errors.JobInProgress`), then reuses the stored result.

The first valid result stored wins and is never overwritten: a delivery whose
answer comes after another's was stored reports the stored one, and a delivery
that lost its lease (it expired during a freeze and another delivery took it)
drops its answer and waits like any other.  The lease expires on its own
(``LLM_TIMEOUT_SECONDS`` + 60 s) should its holder die; a release that meets a Redis
gone away is tried again for :data:`RELEASE_RETRY_SECONDS` first, so the job's next
delivery, once Redis is back, finds the lease free instead of waiting it out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from llm_worker.errors import JobInProgress
from llm_worker.lua import lua_script

#: Seconds a lease outlives the LLM call's own bound.
LEASE_MARGIN_SECONDS = 60.0
#: How long a release that meets an unreachable Redis is tried again, in seconds.
RELEASE_RETRY_SECONDS = 30.0
#: The longest pause between two tries of a release, in seconds.
RELEASE_MAX_PAUSE_SECONDS = 2.0

#: The stored result KEYS[2] when there is one; else take the lease KEYS[1] for ARGV[1]
#: (for ARGV[2] ms) unless another holds it.
_TAKE = lua_script(__name__, "lease_take.lua")

#: Delete KEYS[1] if it still holds ARGV[1].
_RELEASE = lua_script(__name__, "lease_release.lua")

#: Store the result ARGV[2] at KEYS[2] for ARGV[3] s unless one is stored or another holds
#: the lease KEYS[1]; release KEYS[1] if ARGV[1] holds it.
_STORE_AND_RELEASE = lua_script(__name__, "lease_store_and_release.lua")


@dataclass
class JobLease:
    """A job's lease as taken by :func:`job_lease`.

    Attributes:
      stored: the result another attempt or message of the job stored (then no
        lease is held and no call is to be made), or ``None``.
    """

    client: redis.Redis
    lease_key: str
    result_key: str
    holder: str
    stored: bytes | None = None
    released: bool = False

    def store(self, value: str, ttl_seconds: int) -> bytes | None:
        """Store the job's valid result for ``ttl_seconds`` and release the lease, in one
        round trip.

        Returns:
          ``None`` when ``value`` is now the job's result; the result stored before it
          when there was one (``value`` is dropped).

        Raises:
          JobInProgress: another delivery holds the lease now (this one's expired);
            ``value`` is dropped.
        """
        keys_and_args = (self.lease_key, self.result_key, self.holder, value, ttl_seconds)
        state, stored = self.client.eval(_STORE_AND_RELEASE, 2, *keys_and_args)
        self.released = True
        if state == b"lost":
            raise JobInProgress(stored.decode() if isinstance(stored, bytes) else str(stored))
        return bytes(stored) if state == b"stored" else None

    def release(self) -> None:
        """Release the lease without a result (the call failed), trying again while Redis
        is unreachable, for up to :data:`RELEASE_RETRY_SECONDS`.

        Raises:
          redis.ConnectionError, redis.TimeoutError: Redis stayed unreachable; the lease
            then expires on its own.
        """
        if self.released:
            return
        deadline, pause = time.monotonic() + RELEASE_RETRY_SECONDS, 0.05
        while True:
            try:
                self.client.eval(_RELEASE, 1, self.lease_key, self.holder)
                break
            except (redis.ConnectionError, redis.TimeoutError):
                if time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, RELEASE_MAX_PAUSE_SECONDS)
        self.released = True


@contextmanager
def job_lease(
    client: redis.Redis,
    lease_key: str,
    result_key: str,
    holder: str,
    *,
    ttl_seconds: float,
) -> Iterator[JobLease]:
    """Read the job's stored result, or hold its LLM lease for ``holder`` (a delivery
    key), in one round trip; the lease is released on leaving unless
    :meth:`JobLease.store` did.

    Raises:
      JobInProgress: another delivery holds it.
    """
    ttl_ms = max(1, int(ttl_seconds * 1000))
    state, value = client.eval(_TAKE, 2, lease_key, result_key, holder, ttl_ms)
    if state == b"held":
        raise JobInProgress(value.decode() if isinstance(value, bytes) else str(value))
    if state == b"stored":
        yield JobLease(client, lease_key, result_key, holder, stored=bytes(value), released=True)
        return
    lease = JobLease(client, lease_key, result_key, holder)
    try:
        yield lease
    finally:
        lease.release()
