"""Fleet-wide LLM capacity in Redis: leased slots, per-minute limits and the 429 cooldown.

Every LLM call of every worker process asks :class:`CapacityGate` first.  One
atomic script per request (:data:`_ACQUIRE`) checks, in order:

- the user's daily token budget (``LLM_USER_DAILY_TOKENS``): a user who spent it
  waits, in the broker, until the UTC day turns;
- the cooldown after a 429 (``{p}:capacity:cooldown``);
- the waiting order: a job waiting with a better (lower) priority goes first, and
  within one priority the job of the share (its user, or its review request) with
  fewer calls in flight (fair share, ``LLM_SHARE_KEY``);
- the share's own limit (``LLM_MAX_CONCURRENT_REQUESTS_PER_USER``);
- a free slot of ``LLM_MAX_CONCURRENT_REQUESTS`` (``{p}:capacity:slots``, leases
  that expire unless the holder renews them, so a killed worker's slot returns);
- the token buckets of ``LLM_REQUESTS_PER_MINUTE`` and ``LLM_TOKENS_PER_MINUTE``
  (each holds one second's worth: ``limit / 60``, at least 1).

and either takes all of them or none, answering how long to wait.  A call's
prompt estimate is charged to the token bucket (and the user's budget) before it
and corrected by the usage the LLM reports after it.  A share keeps at most
:data:`WAITERS_PER_SHARE` jobs waiting on threads; its further jobs go back to
the broker at once, so one user's backlog cannot fill every worker thread while
other users' jobs sit behind it in the queue.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis

from llm_worker import keys
from llm_worker.errors import LLMAtCapacity
from llm_worker.fleet.intervals import Interval, intervals_ending_after
from llm_worker.fleet.renewal import HeldLeases
from llm_worker.lua import lua_script

logger = logging.getLogger("llm_worker.capacity")

#: A waiter that has not asked for this long is forgotten, in milliseconds.
WAITER_STALE_MS = 1000
#: Seconds between two asks of a job waiting on its thread for a slot.
POLL_SECONDS = 0.05
#: With no limit set, how long a process trusts its last read of the cooldown, in seconds.
COOLDOWN_READ_SECONDS = 0.1
#: Jobs of one share that may wait on worker threads at once; more go back to the broker.
WAITERS_PER_SHARE = 4
#: A priority's weight in the waiting order's score (``priority * scale + calls in
#: flight``): more calls in flight than this rank as this many.
SHARE_SCALE = 100_000
#: Width of one usage window of ``{p}:capacity:usage:{window}``, in seconds.
USAGE_WINDOW_SECONDS = 10

#: The functions the share-counting scripts have in common, prepended to each.
_SHARES = lua_script(__name__, "capacity_shares.lua")

_ACQUIRE = _SHARES + lua_script(__name__, "capacity_acquire.lua")

_RELEASE = _SHARES + lua_script(__name__, "capacity_release.lua")

_FORGET = _SHARES + lua_script(__name__, "capacity_forget.lua")

_COOL_DOWN = lua_script(__name__, "capacity_cool_down.lua")


def job_share(share_key: str, user_id: int | None) -> str:
    """Who a job's LLM calls count for in the fair order (``LLM_SHARE_KEY``): its user,
    or nobody (``""``) when fair share is off or the job has no user."""
    if share_key == "none" or user_id is None:
        return ""
    return f"user:{user_id}"


def review_share(share_key: str, review_request_id: str | int) -> str:
    """Who a review chunk's LLM calls count for in the fair order: its review request."""
    return "" if share_key == "none" else f"review:{review_request_id}"


@dataclass(frozen=True)
class CapacityLimits:
    """The fleet's limits; 0 means none.

    Parameters:
      max_concurrent: LLM requests in flight at once (``LLM_MAX_CONCURRENT_REQUESTS``).
      requests_per_minute: ``LLM_REQUESTS_PER_MINUTE``.
      tokens_per_minute: ``LLM_TOKENS_PER_MINUTE``.
      lease_seconds: a slot's lease (``LLM_SLOT_LEASE_SECONDS``), renewed during a call.
      per_share: LLM requests one share (user) may have in flight at once
        (``LLM_MAX_CONCURRENT_REQUESTS_PER_USER``).
      daily_tokens: tokens one user may use per UTC day (``LLM_USER_DAILY_TOKENS``).
    """

    max_concurrent: int = 0
    requests_per_minute: int = 0
    tokens_per_minute: int = 0
    lease_seconds: float = 30.0
    per_share: int = 0
    daily_tokens: int = 0

    @property
    def any(self) -> bool:
        """Whether any limit is set."""
        return bool(
            self.max_concurrent
            or self.requests_per_minute
            or self.tokens_per_minute
            or self.per_share
            or self.daily_tokens
        )

    @property
    def counts_slots(self) -> bool:
        """Whether calls in flight are counted (a fleet or a per-share cap)."""
        return bool(self.max_concurrent or self.per_share)


@dataclass(frozen=True)
class Grant:
    """The answer to one ask: granted, or how long to wait and why."""

    granted: bool
    wait_seconds: float
    reason: str
    #: Wait in the broker, not on the thread (the share has jobs waiting already, or
    #: its daily budget is spent).
    send_back: bool = False


@dataclass
class Lease:
    """A granted request: its id, its token estimate, and the tokens it really used.

    ``share`` is who the call is counted for (``""``: nobody), ``user`` whose daily
    budget it is charged to (``""``: nobody's), ``day`` the UTC day it was charged.
    """

    lease_id: str
    estimate: int
    window: int
    used: int | None = None
    share: str = ""
    user: str = ""
    day: int = 0


@dataclass(frozen=True)
class Cooldown:
    """The fleet's cooldown after a 429: until when (seconds since the epoch) and why."""

    until: float
    reason: str


@dataclass
class CapacitySnapshot:
    """What operators see of the fleet's capacity (``llm-worker status``, metrics)."""

    max_concurrent: int
    slots_in_use: int
    requests_per_minute_limit: int
    requests_last_minute: int
    tokens_per_minute_limit: int
    tokens_last_minute: int
    waiting_on_threads: int
    cooldown: dict[str, Any] | None = None


class CapacityStore:
    """The capacity state in Redis (keys ``{p}:capacity:*``).

    Parameters:
      client: Redis at ``REDIS_URL``.
      prefix: ``KEY_PREFIX``.
      limits: the fleet's limits.
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        limits: CapacityLimits,
        *,
        history_seconds: float = 2 * 1_209_600,
    ) -> None:
        self._redis = client
        self._history = history_seconds
        self._cooldowns = keys.capacity_cooldowns(prefix)
        self._prefix = prefix
        self.limits = limits
        self._slots = keys.capacity_slots(prefix)
        self._waiting = keys.capacity_waiting(prefix)
        self._seen = keys.capacity_waiting_seen(prefix)
        self._slot_shares = keys.capacity_slot_shares(prefix)
        self._share_slots = keys.capacity_share_slots(prefix)
        self._waiter_shares = keys.capacity_waiter_shares(prefix)
        self._share_waiters = keys.capacity_share_waiters(prefix)
        self._requests = keys.capacity_bucket(prefix, "requests")
        self._tokens = keys.capacity_bucket(prefix, "tokens")
        self._cooldown = keys.capacity_cooldown(prefix)
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._forget = client.register_script(_FORGET)
        self._cool_down = client.register_script(_COOL_DOWN)

    def _usage_key(self, window: int) -> str:
        return keys.capacity_usage(self._prefix, window)

    def _quota_key(self, user: str, day: int) -> str:
        return keys.capacity_quota(self._prefix, day, user) if user else ""

    def acquire(
        self,
        lease_id: str,
        *,
        priority: int,
        tokens: int,
        share: str = "",
        user: str = "",
        now: float | None = None,
    ) -> Grant:
        """Ask for one request's capacity (atomically: all limits or none).

        ``share``: who the call counts for in the fair order and the per-share limit;
        ``user``: whose daily token budget it is charged to (``""``: none of them).
        """
        now = time.time() if now is None else now
        now_ms = int(now * 1000)
        window = int(now // USAGE_WINDOW_SECONDS)
        day = int(now // 86_400)
        limits = self.limits
        granted, wait_ms, reason, send_back = self._acquire(
            keys=[
                self._slots,
                self._waiting,
                self._seen,
                self._requests,
                self._tokens,
                self._cooldown,
                self._usage_key(window),
                self._slot_shares,
                self._share_slots,
                self._waiter_shares,
                self._share_waiters,
                self._quota_key(user, day) if limits.daily_tokens else "",
            ],
            args=[
                now_ms,
                lease_id,
                int(limits.lease_seconds * 1000),
                limits.max_concurrent,
                limits.requests_per_minute,
                limits.tokens_per_minute,
                max(0, tokens),
                priority,
                int(POLL_SECONDS * 1000),
                WAITER_STALE_MS,
                share,
                limits.per_share,
                WAITERS_PER_SHARE,
                limits.daily_tokens,
                (day + 1) * 86_400_000 - now_ms,
                SHARE_SCALE,
                int(limits.counts_slots),
            ],
        )
        text = reason.decode() if isinstance(reason, bytes) else str(reason)
        return Grant(bool(granted), int(wait_ms) / 1000, text, bool(send_back))

    def release(self, lease: Lease) -> None:
        """Give the slot back and correct the token counts by the reported usage."""
        correction = 0 if lease.used is None else lease.used - lease.estimate
        self._release(
            keys=[
                self._slots,
                self._tokens,
                self._usage_key(lease.window),
                self._slot_shares,
                self._share_slots,
                self._quota_key(lease.user, lease.day) if self.limits.daily_tokens else "",
            ],
            args=[lease.lease_id, self.limits.tokens_per_minute, correction],
        )

    def forget_waiter(self, lease_id: str) -> None:
        """Stop counting a job that gave up waiting on its thread."""
        self._forget(
            keys=[self._waiting, self._seen, self._waiter_shares, self._share_waiters],
            args=[lease_id],
        )

    def quota_used(self, user: str, *, now: float | None = None) -> int:
        """Tokens charged to ``user`` today (UTC)."""
        now = time.time() if now is None else now
        return int(self._redis.get(self._quota_key(user, int(now // 86_400))) or 0)

    def held_by(self, share: str) -> int:
        """Slots ``share`` holds now."""
        return int(self._redis.hget(self._share_slots, share) or 0)

    def renew(self, lease_ids: list[str], *, now: float | None = None) -> None:
        """Extend the leases still held (one command for all of them)."""
        if not lease_ids:
            return
        now = time.time() if now is None else now
        expiry = int((now + self.limits.lease_seconds) * 1000)
        self._redis.zadd(self._slots, dict.fromkeys(lease_ids, expiry), xx=True)

    def cool_down(self, seconds: float, reason: str, *, now: float | None = None) -> bool:
        """Start (or lengthen) the fleet's cooldown; ``True`` if this call set it."""
        now = time.time() if now is None else now
        ms = max(1, int(seconds * 1000))
        return bool(
            self._cool_down(
                keys=[self._cooldown, self._cooldowns],
                args=[ms, now + seconds, reason[:500], now, now - self._history],
            )
        )

    def cooldown_intervals(self, start: float) -> list[Interval]:
        """The cooldowns (``(began, until)``, seconds since the epoch) that ended after
        ``start`` or go on; kept ``history_seconds``."""
        return intervals_ending_after(self._redis, self._cooldowns, start)

    def cooldown(self) -> Cooldown | None:
        """The current cooldown, or ``None``."""
        raw = self._redis.hgetall(self._cooldown)
        if b"until" not in raw:
            return None
        return Cooldown(float(raw[b"until"]), raw.get(b"reason", b"").decode())

    def cooldown_seconds(self) -> float:
        """Seconds left of the cooldown (0 when there is none)."""
        return max(0, int(self._redis.pttl(self._cooldown))) / 1000

    def snapshot(self, *, now: float | None = None) -> CapacitySnapshot:
        """Slots in use, the last minute's requests and tokens, waiters and the cooldown."""
        now = time.time() if now is None else now
        now_ms = int(now * 1000)
        window = int(now // USAGE_WINDOW_SECONDS)
        windows = [window - n for n in range(60 // USAGE_WINDOW_SECONDS)]
        pipe = self._redis.pipeline(transaction=False)
        pipe.zcount(self._slots, now_ms, "+inf")
        pipe.zcount(self._seen, now_ms - WAITER_STALE_MS, "+inf")
        for w in windows:
            pipe.hmget(self._usage_key(w), "requests", "tokens")
        slots, waiting, *usage = pipe.execute()
        cooldown = self.cooldown()
        return CapacitySnapshot(
            max_concurrent=self.limits.max_concurrent,
            slots_in_use=int(slots),
            requests_per_minute_limit=self.limits.requests_per_minute,
            requests_last_minute=sum(int(r or 0) for r, _ in usage),
            tokens_per_minute_limit=self.limits.tokens_per_minute,
            tokens_last_minute=sum(int(t or 0) for _, t in usage),
            waiting_on_threads=int(waiting),
            cooldown=({"until": cooldown.until, "reason": cooldown.reason} if cooldown else None),
        )


class CapacityGate:
    """What a worker thread goes through before each LLM call.

    :meth:`request` waits on the thread for at most ``wait_seconds`` (asking
    again every :data:`POLL_SECONDS` for a slot, or when the bucket or cooldown
    says), then raises :class:`~llm_worker.errors.LLMAtCapacity` so that the
    job is re-enqueued with a short delay instead of holding the thread.  A
    thread of each process renews the leases held by its calls every third of
    the lease.  With no limit set, only the cooldown is checked (one command,
    at most every :data:`COOLDOWN_READ_SECONDS` per process; a cooldown this
    process starts is known at once).

    Parameters:
      store: the shared state.
      wait_seconds: ``LLM_CAPACITY_WAIT_SECONDS``.
    """

    def __init__(self, store: CapacityStore, *, wait_seconds: float) -> None:
        self.store = store
        self.wait_seconds = wait_seconds
        self._held: HeldLeases[str] = HeldLeases(
            store.renew,
            interval=store.limits.lease_seconds / 3,
            name="llm-slot-renewer",
            what="LLM slot leases",
        )
        self._cooldown_read_at = -COOLDOWN_READ_SECONDS
        self._cooldown_ends = 0.0

    @contextmanager
    def request(
        self, *, priority: int, tokens: int, share: str = "", user: str = ""
    ) -> Iterator[Lease]:
        """Hold capacity for one LLM call of about ``tokens`` prompt tokens, counted for
        ``share`` (fair share and its limit) and charged to ``user``'s daily budget.

        Set ``lease.used`` to the tokens the call really used (prompt plus
        completion) before leaving the block.

        Raises:
          LLMAtCapacity: no capacity within ``wait_seconds``; at once when the job
            should wait in the broker (its share has jobs waiting on threads already, or
            the user's daily budget is spent).
        """
        now = time.time()
        lease = Lease(
            uuid.uuid4().hex,
            max(0, tokens),
            int(now // USAGE_WINDOW_SECONDS),
            share=share,
            user=user,
            day=int(now // 86_400),
        )
        if not self.store.limits.any:
            self._wait_out_cooldown()
            yield lease
            return
        self._acquire(lease, priority)
        try:
            yield lease
        finally:
            self._held.discard(lease.lease_id)
            try:
                self.store.release(lease)
            except redis.RedisError:  # the lease expires by itself
                logger.warning("could not release LLM slot %s; it expires", lease.lease_id)

    def cool_down(self, seconds: float, reason: str) -> bool:
        """Start (or lengthen) the fleet's cooldown; ``True`` if this call set it."""
        started = self.store.cool_down(seconds, reason)
        self._cooldown_read_at = -COOLDOWN_READ_SECONDS  # read it again on the next call
        return started

    def _cooldown_left(self) -> float:
        now = time.monotonic()
        if now - self._cooldown_read_at >= COOLDOWN_READ_SECONDS:
            self._cooldown_ends = now + self.store.cooldown_seconds()
            self._cooldown_read_at = now
        return max(0.0, self._cooldown_ends - now)

    def _wait_out_cooldown(self) -> None:
        left = self._cooldown_left()
        if left <= 0:
            return
        if left > self.wait_seconds:
            raise LLMAtCapacity(left, "cooldown")
        time.sleep(left)

    def _acquire(self, lease: Lease, priority: int) -> None:
        deadline = time.monotonic() + self.wait_seconds
        while True:
            grant = self.store.acquire(
                lease.lease_id,
                priority=priority,
                tokens=lease.estimate,
                share=lease.share,
                user=lease.user,
            )
            if grant.granted:
                now = time.time()
                lease.window = int(now // USAGE_WINDOW_SECONDS)
                lease.day = int(now // 86_400)
                self._hold(lease.lease_id)
                return
            if grant.send_back:
                raise LLMAtCapacity(grant.wait_seconds, grant.reason, sent_back=True)
            pause = grant.wait_seconds
            if grant.reason in ("slots", "priority", "turn", "share_limit"):
                pause = random.uniform(0.5, 1.5) * POLL_SECONDS
            if time.monotonic() + pause > deadline:
                self.store.forget_waiter(lease.lease_id)
                raise LLMAtCapacity(grant.wait_seconds, grant.reason)
            time.sleep(pause)

    def _hold(self, lease_id: str) -> None:
        if self.store.limits.counts_slots:
            self._held.add(lease_id)
