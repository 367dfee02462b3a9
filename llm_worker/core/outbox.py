"""The one road to Core: every terminal job state (completed, failed, skipped, expired)
is reported here, and here alone the job's finished marker is written.

A completed job is reported while its actor runs (:meth:`ReportOutbox.complete`):
Core first, where an error propagates and the job's retries run it again (reusing its
stored answer), then the user's notifications and the finished marker in one step.

A job that fails, is skipped as stale or expires is decided by middleware
after the actor ran, where a failing Core cannot be retried by re-running the
job.  Its report (Core's ``PATCH /jobs/{job_id}`` and the user's
notification) is therefore written to Redis first, in one transaction with
the job's finished marker, and then delivered: at once, and again with
exponential backoff by every worker process's drain thread until Core
accepts it.  Reports Core still refuses after ``JOB_MAX_RETRIES`` retries,
and reports Core refused for good (:class:`~llm_worker.errors.CoreRefused`: 404,
409, 410, 422...) at once, are kept as dead reports for an operator to requeue.
While Core refuses the worker's credentials (401, 403) a report waits
``CORE_UNAUTHORIZED_HOLD_SECONDS`` between tries without spending an attempt.

Redis keys (``{p}`` is ``KEY_PREFIX``):

- ``{p}:outbox``: hash, message id -> the pending report (JSON);
- ``{p}:outbox:due``: sorted set, message id -> when to try it next;
- ``{p}:outbox:dead``: hash, message id -> a report Core never accepted, kept
  ``OUTBOX_DEAD_TTL_SECONDS`` (``{p}:outbox:dead:since`` says since when), then dropped
  with an error log line.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import redis
from dramatiq.common import compute_backoff

from llm_worker import keys
from llm_worker.core.client import CoreClient, JobStatus
from llm_worker.core.notify import Notification, Notifier
from llm_worker.core.refusals import note_refused, note_unauthorized
from llm_worker.errors import CoreRefused, CoreUnauthorized
from llm_worker.llm.usage import USAGE_OPTION, Usage
from llm_worker.lua import lua_script

logger = logging.getLogger("llm_worker.outbox")

#: Take the reports due by ARGV[1] (at most ARGV[3]) and lease them until ARGV[2].
_CLAIM_DUE = lua_script(__name__, "outbox_claim_due.lua")


@dataclass(frozen=True)
class Report:
    """One job's terminal state, for Core and (optionally) the user.

    ``notification`` is ``(message_type, content)``, published only when
    ``user_id`` is known and after Core accepted the state.
    """

    message_id: str
    job_type: str
    job_id: str | int
    user_id: int | None
    status: JobStatus
    error: str | None
    usage: dict[str, Any] = field(default_factory=dict)
    notification: tuple[str, dict[str, Any]] | None = None
    attempts: int = 0
    last_error: str | None = None
    #: A completed job's result.
    result: dict[str, Any] | None = None

    def to_json(self) -> str:
        """The stored form."""
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Report:
        """Read a stored report."""
        data = json.loads(raw)
        notification = data.get("notification")
        data["notification"] = tuple(notification) if notification else None
        return cls(**data)


@dataclass(frozen=True)
class RetryPolicy:
    """How long the outbox keeps retrying: ``max_attempts`` deliveries in all, backoff
    between them in seconds."""

    max_attempts: int
    min_backoff_seconds: float
    max_backoff_seconds: float

    def delay_after(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed delivery (jittered, doubling)."""
        _, delay_ms = compute_backoff(
            max(0, attempts - 1),
            factor=max(1, int(self.min_backoff_seconds * 1000)),
            max_backoff=int(self.max_backoff_seconds * 1000),
        )
        return delay_ms / 1000


class ReportOutbox:
    """Stores terminal job reports in Redis and delivers them until Core accepts.

    Parameters:
      client: Redis (the service's state store, ``REDIS_URL``).
      prefix: ``KEY_PREFIX``.
      core: the Core client reports are delivered to.
      notifier: publishes the user's notification once Core accepted.
      policy: how long and how often to retry.
      finished_ttl_seconds: how long the job's finished marker lives.
      lease_seconds: how long a delivery in progress keeps others off a report.
      hold_seconds: the wait between tries while Core refuses the worker's credentials.
      dead_ttl_seconds: how long a dead report is kept for an operator.
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        *,
        core: CoreClient,
        notifier: Notifier,
        policy: RetryPolicy,
        finished_ttl_seconds: int,
        lease_seconds: float = 60.0,
        hold_seconds: float = 60.0,
        dead_ttl_seconds: float = 2_592_000.0,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._core = core
        self._notifier = notifier
        self.policy = policy
        self._finished_ttl = finished_ttl_seconds
        self._lease = lease_seconds
        self._hold = hold_seconds
        self._reports = keys.outbox(prefix)
        self._due = keys.outbox_due(prefix)
        self._dead = keys.outbox_dead(prefix)
        self._dead_since = keys.outbox_dead_since(prefix)
        self._dead_ttl = dead_ttl_seconds
        self._claim_due = client.register_script(_CLAIM_DUE)

    # -- writing and delivering -------------------------------------------------------

    def complete(self, report: Report, notifications: Sequence[Notification]) -> None:
        """Report a completed job now: its result to Core, then ``notifications`` (each
        published once) and the finished marker, in one Redis round trip.

        ``report.message_id`` empty (no message: the eval command) publishes with no
        marker.

        Raises:
          CoreAPIError: when Core does not take the result (nothing was published).
        """
        self._update_core(report)
        if report.user_id is None:
            publications = []
        else:
            user_id = report.user_id
            publications = [
                self._notifier.prepare(
                    user_id=user_id,
                    job_id=report.job_id,
                    message_type=notification.message_type,
                    content=notification.content,
                    job_type=report.job_type,
                    discriminator=index,
                )
                for index, notification in enumerate(notifications)
            ]
        if not report.message_id:
            for publication in publications:
                self._notifier.publish_prepared(publication)
            return
        self._notifier.publish_and_mark(
            publications,
            key=self._finished_key(report.message_id),
            value=report.status,
            ttl_seconds=self._finished_ttl,
        )

    def finish_unreported(self, message_id: str, status: JobStatus) -> None:
        """Mark a job finished that cannot be reported (its message has no usable
        ``job_id``), so a redelivery of it does nothing."""
        self._redis.set(self._finished_key(message_id), status, ex=self._finished_ttl)

    def _finished_key(self, message_id: str) -> str:
        """The job's finished marker: what :class:`~middleware.FinishedJobCheck` reads."""
        return keys.finished(self._prefix, message_id)

    def send(self, report: Report) -> bool:
        """Store ``report`` with the job's finished marker, then try to deliver it once.

        Returns whether Core accepted it now; if not, the drain retries it.

        Raises:
          redis.RedisError: if the report could not be stored (nothing was decided).
        """
        self.put(report)
        return self._attempt(report)

    def put(self, report: Report) -> None:
        """Store ``report`` and mark its job finished, in one transaction.

        The report is leased to the caller, so drains leave it alone while it
        is delivered right away.
        """
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(self._reports, report.message_id, report.to_json())
        pipe.zadd(self._due, {report.message_id: time.time() + self._lease})
        pipe.set(self._finished_key(report.message_id), report.status, ex=self._finished_ttl)
        pipe.execute()

    def drain(self, *, limit: int = 100, now: float | None = None) -> int:
        """Deliver the reports that are due; return how many Core accepted.  Dead reports
        past their time are dropped on the way."""
        now = time.time() if now is None else now
        self._drop_old_dead(now)
        due = self._claim_due(keys=[self._due], args=[now, now + self._lease, limit])
        if not due:
            return 0
        raws = self._redis.hmget(self._reports, due)
        delivered = 0
        for message_id, raw in zip(due, raws, strict=True):
            if raw is None:  # delivered meanwhile by another process
                self._redis.zrem(self._due, message_id)
                continue
            delivered += self._attempt(Report.from_json(raw))
        return delivered

    def _attempt(self, report: Report) -> bool:
        try:
            self._deliver(report)
        except CoreUnauthorized as exc:
            self._held(report, exc)
            return False
        except CoreRefused as exc:
            note_refused(exc, job_id=report.job_id, request="report")
            self._give_up(replace(report, attempts=report.attempts + 1, last_error=str(exc)))
            return False
        except Exception as exc:
            self._failed(report, f"{type(exc).__name__}: {exc}")
            return False
        pipe = self._redis.pipeline(transaction=True)
        pipe.hdel(self._reports, report.message_id)
        pipe.zrem(self._due, report.message_id)
        pipe.execute()
        if report.attempts:
            logger.info(
                "report %s of job %s delivered after %d failed attempts",
                report.status,
                report.job_id,
                report.attempts,
            )
        return True

    def _update_core(self, report: Report) -> None:
        """``PATCH /jobs/{job_id}`` with the report's state."""
        self._core.update_job(
            report.job_id,
            report.status,
            result=report.result,
            error=report.error,
            usage=Usage.from_options({USAGE_OPTION: report.usage}),
        )

    def _deliver(self, report: Report) -> None:
        self._update_core(report)
        if report.notification is not None and report.user_id is not None:
            message_type, content = report.notification
            self._notifier.publish(
                user_id=report.user_id,
                job_id=report.job_id,
                message_type=message_type,
                content=content,
                job_type=report.job_type,
            )

    def _held(self, report: Report, error: CoreUnauthorized) -> None:
        """Try ``report`` again after the hold interval, its attempts untouched."""
        note_unauthorized(
            self._redis,
            self._prefix,
            error,
            job_id=report.job_id,
            request="report",
            hold_seconds=self._hold,
        )
        held = replace(report, last_error=str(error))
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(self._reports, held.message_id, held.to_json())
        pipe.zadd(self._due, {held.message_id: time.time() + self._hold})
        pipe.execute()

    def _give_up(self, report: Report) -> None:
        """Keep ``report`` as a dead report."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(self._dead, report.message_id, report.to_json())
        pipe.zadd(self._dead_since, {report.message_id: time.time()})
        pipe.hdel(self._reports, report.message_id)
        pipe.zrem(self._due, report.message_id)
        pipe.execute()

    def _failed(self, report: Report, error: str) -> None:
        retry = replace(report, attempts=report.attempts + 1, last_error=error)
        if retry.attempts >= self.policy.max_attempts:
            self._give_up(retry)
            logger.error(
                "gave up reporting %s of job %s to Core after %d attempts (kept as a dead "
                "report; `llm-worker requeue-dead` retries it): %s",
                retry.status,
                retry.job_id,
                retry.attempts,
                error,
            )
            return
        delay = self.policy.delay_after(retry.attempts)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(self._reports, retry.message_id, retry.to_json())
        pipe.zadd(self._due, {retry.message_id: time.time() + delay})
        pipe.execute()
        logger.warning(
            "could not report %s of job %s (attempt %d of %d), next try in %.1fs: %s",
            retry.status,
            retry.job_id,
            retry.attempts,
            self.policy.max_attempts,
            delay,
            error,
        )

    def _drop_old_dead(self, now: float, *, limit: int = 100) -> None:
        """Drop the dead reports older than ``dead_ttl_seconds`` (``limit`` a pass)."""
        old = self._redis.zrangebyscore(
            self._dead_since, "-inf", now - self._dead_ttl, start=0, num=limit
        )
        if not old:
            return
        pipe = self._redis.pipeline(transaction=True)
        pipe.hdel(self._dead, *old)
        pipe.zrem(self._dead_since, *old)
        pipe.execute()
        logger.error(
            "dropped %d dead reports Core never accepted, kept OUTBOX_DEAD_TTL_SECONDS=%.0f: %s",
            len(old),
            self._dead_ttl,
            ", ".join(item.decode(errors="replace") for item in old[:10]),
        )

    # -- operators --------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """``pending`` and ``dead`` reports."""
        return {
            "pending": int(self._redis.hlen(self._reports)),
            "dead": int(self._redis.hlen(self._dead)),
        }

    def report_of(self, message_id: str) -> tuple[Report, bool] | None:
        """The stored report of a job not yet accepted by Core, and whether it is dead."""
        for key, dead in ((self._reports, False), (self._dead, True)):
            raw = self._redis.hget(key, message_id)
            if raw:
                return Report.from_json(raw), dead
        return None

    def reopen(self, message_id: str) -> None:
        """Forget a job's terminal state and any report of it not yet delivered, so the
        job can run again (an operator requeued it)."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hdel(self._reports, message_id)
        pipe.zrem(self._due, message_id)
        pipe.hdel(self._dead, message_id)
        pipe.zrem(self._dead_since, message_id)
        pipe.delete(self._finished_key(message_id))
        pipe.execute()

    def requeue_dead(self, *, dry_run: bool = False) -> int:
        """Move every dead report back to pending, due now; return how many."""
        if dry_run:
            return int(self._redis.hlen(self._dead))
        moved = 0
        for message_id, raw in self._redis.hscan_iter(self._dead, count=500):
            report = replace(Report.from_json(raw), attempts=0)
            pipe = self._redis.pipeline(transaction=True)
            pipe.hset(self._reports, message_id, report.to_json())
            pipe.zadd(self._due, {message_id: time.time()})
            pipe.hdel(self._dead, message_id)
            pipe.zrem(self._dead_since, message_id)
            pipe.execute()
            moved += 1
        return moved
