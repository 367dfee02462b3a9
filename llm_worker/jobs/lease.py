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
drops its answer and waits like any other.

A lease lasts ``BROKER_HEARTBEAT_TIMEOUT_SECONDS`` and is renewed every third of that by
one thread of each process for all the leases it holds (:class:`JobLeases`), so it
expires when its holder's worker is dead, frozen or cut from Redis: by the time the
broker counts that worker dead and its messages run elsewhere.  A release that meets a
Redis gone away is tried again for :data:`RELEASE_RETRY_SECONDS` first, so the job's
next delivery, once Redis is back, finds the lease free instead of waiting it out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import redis

from llm_worker.errors import JobInProgress
from llm_worker.fleet.renewal import HeldLeases
from llm_worker.lua import lua_script

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

#: Extend each lease KEYS[i] to ARGV[1] ms if ARGV[i + 1] still holds it.
_RENEW = lua_script(__name__, "lease_renew.lua")


@dataclass
class JobLease:
    """A job's lease as taken by :meth:`JobLeases.hold`.

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
    #: When it was taken or last confirmed (``time.monotonic()``).
    confirmed_at: float = field(default_factory=time.monotonic)
    #: After this many seconds :meth:`confirm` asks Redis again (a third of the lease).
    confirm_after: float = 0.0

    def confirm(self) -> None:
        """Make sure the lease is still this delivery's before the LLM is asked: a process
        frozen or cut off past the lease (while it waited for capacity) may have lost it to
        another delivery.  Asks Redis only when a third of the lease has gone by since it was
        taken or last confirmed.

        Raises:
          JobInProgress: another delivery holds it, or it expired.
        """
        if time.monotonic() - self.confirmed_at < self.confirm_after:
            return
        current = self.client.get(self.lease_key)
        if current != self.holder.encode():
            self.released = True  # nothing of this delivery's to release
            holder = current.decode() if isinstance(current, bytes) else "none: it expired"
            raise JobInProgress(holder)
        self.confirmed_at = time.monotonic()

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


class JobLeases:
    """The job leases a process holds, each lasting ``ttl_seconds`` and renewed together,
    in one Redis call every third of it (:class:`~llm_worker.fleet.renewal.HeldLeases`).

    Parameters:
      client: Redis at ``REDIS_URL``.
      ttl_seconds: a lease's life without renewal (``BROKER_HEARTBEAT_TIMEOUT_SECONDS``).
    """

    def __init__(self, client: redis.Redis, *, ttl_seconds: float) -> None:
        self._client = client
        self._ttl_ms = max(1, int(ttl_seconds * 1000))
        self._held: HeldLeases[tuple[str, str]] = HeldLeases(
            self._renew,
            interval=ttl_seconds / 3,
            name="llm-job-lease-renewer",
            what="job leases",
        )

    @contextmanager
    def hold(self, lease_key: str, result_key: str, holder: str) -> Iterator[JobLease]:
        """Read the job's stored result, or hold its LLM lease for ``holder`` (a delivery
        key), in one round trip; the lease is renewed while held and released on leaving
        unless :meth:`JobLease.store` did.

        Raises:
          JobInProgress: another delivery holds it.
        """
        state, value = self._client.eval(_TAKE, 2, lease_key, result_key, holder, self._ttl_ms)
        if state == b"held":
            raise JobInProgress(value.decode() if isinstance(value, bytes) else str(value))
        if state == b"stored":
            yield JobLease(
                self._client, lease_key, result_key, holder, stored=bytes(value), released=True
            )
            return
        lease = JobLease(
            self._client, lease_key, result_key, holder, confirm_after=self._ttl_ms / 3000
        )
        self._held.add((lease_key, holder))
        try:
            yield lease
        finally:
            self._held.discard((lease_key, holder))
            lease.release()

    def renew(self) -> int:
        """Renew every lease held now, in one call; how many were still this process's."""
        return self._renew(self._held.held())

    def _renew(self, held: list[tuple[str, str]]) -> int:
        if not held:
            return 0
        keys, holders = [key for key, _ in held], [holder for _, holder in held]
        return int(self._client.eval(_RENEW, len(keys), *keys, self._ttl_ms, *holders))
