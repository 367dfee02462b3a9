"""Where one job is and why: what ``llm-worker send --wait`` says when no notification comes.

Read from Redis (the Redis broker's keys, the job's finished marker, the report
outbox and the breaker); with RabbitMQ only the finished marker, the outbox and
the breaker are known.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import dramatiq
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from llm_worker import keys
from llm_worker.broker.redis_layout import RedisLayout
from llm_worker.fleet.breaker import BreakerStatus
from llm_worker.jobs import retry as message_options
from llm_worker.jobs.registry import job_type
from llm_worker.services import Services
from llm_worker.settings import Settings

Place = Literal[
    "finished",
    "report_pending",
    "report_dead",
    "dead_letter",
    "delayed",
    "in_flight",
    "queued",
    "unknown",
]


@dataclass(frozen=True)
class JobState:
    """One job's whereabouts.

    Attributes:
      place: where the job is (see :data:`Place`).
      status: its terminal state when known (``completed``, ``failed``, ``skipped``).
      error: the job's error, or the reason Core refused its report.
      message: the broker's copy of the message, when found.
    """

    place: Place
    status: str | None = None
    error: str | None = None
    message: Message[Any] | None = None

    @property
    def final(self) -> bool:
        """Whether nothing more will happen to the job without an operator."""
        return self.place in ("finished", "report_dead", "dead_letter")


def _find(broker: RedisBroker, message: Message[Any]) -> tuple[Place, Message[Any]] | None:
    """Where the broker keeps ``message``'s latest copy, and that copy. Dramatiq keys a
    message by the ``redis_message_id`` of its latest enqueue (a hold or a retry makes a
    new one), so this may scan the queue's hashes for its ``message_id``."""
    layout, queue = RedisLayout.of(broker), message.queue_name
    places: tuple[tuple[Place, str], ...] = (
        ("dead_letter", layout.dead_letter_queue(queue)),
        ("delayed", layout.delay_queue(queue)),
        ("queued", queue),
    )
    for place, queue_name in places:
        stored = layout.find(queue_name, message)
        if stored is not None:
            redis_id = stored.options.get("redis_message_id")
            if place == "queued" and layout.is_in_flight(queue, redis_id):
                return "in_flight", stored
            return place, stored
    return None


def finished_job(svc: Services, message_id: str) -> JobState | None:
    """The job's end when known: a report Core has not accepted (pending or dead), or
    the finished marker. Cheap (two Redis reads): polled while waiting."""
    stored = svc.outbox.report_of(message_id)
    if stored is not None:
        report, dead = stored
        place: Place = "report_dead" if dead else "report_pending"
        return JobState(place, report.status, report.last_error or report.error)
    raw = svc.redis.get(keys.finished(svc.settings.key_prefix, message_id))
    return JobState("finished", raw.decode()) if raw else None


def job_state(broker: dramatiq.Broker, svc: Services, message: Message[Any]) -> JobState:
    """Where the job of ``message`` (as its producer sent it) is now; with the Redis
    broker this may scan the queue's hashes."""
    ended = finished_job(svc, message.message_id)
    if ended is not None:
        return ended
    if isinstance(broker, RedisBroker):
        found = _find(broker, message)
        if found is not None:
            return JobState(found[0], message=found[1])
    return JobState("unknown")


def _ago(since: float) -> str:
    moment = time.strftime("%H:%M:%S UTC", time.gmtime(since))
    return f"{moment}, {max(0.0, time.time() - since):.0f}s ago"


def _seconds(value: float) -> str:
    return f"{max(0.0, value):.1f}s"


def attempt_line(settings: Settings, options: dict[str, Any]) -> str:
    """``attempt n of m`` for a job about to run (again), and why it runs again."""
    retries = int(options.get(message_options.RETRIES) or 0)
    invalid = int(options.get(message_options.INVALID_RETRIES) or 0)
    attempt = 1 + retries + invalid
    server_errors = int(options.get(message_options.SERVER_ERRORS) or 0)
    if server_errors and not retries and not invalid:
        return (
            "retrying after the LLM failed its request while answering probes "
            f"({server_errors} of {settings.llm_request_max_server_errors} server errors)"
        )
    if invalid and not retries:
        return (
            f"retrying after an invalid answer, attempt {attempt} of {settings.llm_max_retries + 1}"
        )
    if retries:
        error = str(options.get("traceback") or "").strip().splitlines()[-1:] or ["an error"]
        return (
            f"retrying after {error[0][:300]}, attempt {attempt} of {settings.job_max_retries + 1}"
        )
    return f"attempt {attempt}"


def _delayed(message: Message[Any] | None, settings: Settings | None) -> str:
    options = message.options if message is not None else {}
    if settings is None:
        return "the job is delayed in the broker"
    eta = options.get("eta")
    runs = (
        f"next attempt in {_seconds(eta / 1000 - time.time())}" if eta else "waiting for its delay"
    )
    return f"the job is delayed, {attempt_line(settings, options)}, {runs}"


def _held(state: JobState, breaker: BreakerStatus, settings: Settings | None) -> str:
    now = time.time()
    probe = max(0.0, (breaker.next_probe_at or now) - now)
    line = (
        f"the LLM is unavailable (breaker open since {_ago(breaker.since or now)}: "
        f"{breaker.last_error}); the job is held in the broker and runs when the LLM "
        f"answers (next probe in {_seconds(probe)})"
    )
    message = state.message
    held_since = message.options.get(message_options.HELD_SINCE) if message else None
    if message is not None and held_since and settings is not None:
        age = now - message.message_timestamp / 1000
        expiry = settings.llm_unavailable_expiry_seconds - age
        line += (
            f"; held back for {_seconds(now - float(held_since))}, it expires in {_seconds(expiry)}"
        )
    return line


#: What an operator is told of a job still in the broker, by place.
WAITING = {
    "dead_letter": "the job is dead-lettered (`llm-worker requeue-dead` runs it again)",
    "in_flight": "a worker is running the job",
    "queued": "the job is still queued: no worker has taken it (is one running? "
    "`llm-worker status` shows live workers)",
    "unknown": "the job is not in the broker and has no recorded end",
}


def _ended(state: JobState, actor_name: str) -> str:
    error = f": {state.error}" if state.error else ""
    if state.place == "report_pending":
        return (
            f"the job {state.status}, but Core has not accepted its report yet "
            f"({state.error}); the notification follows once Core does"
        )
    if state.place == "report_dead":
        return (
            f"the job {state.status}, and Core refused its report JOB_MAX_RETRIES times "
            f"({state.error}); `llm-worker requeue-dead` delivers it again"
        )
    if state.status == "completed":
        declared = job_type(actor_name)
        silent = declared.notifies_only if declared is not None else None
        return f"the job completed without a notification{f' ({silent})' if silent else ''}"
    if state.status == "skipped":
        return f"the job was skipped{error}"
    return f"the job {state.status}{error}"


def explain(
    state: JobState, breaker: BreakerStatus, actor_name: str, settings: Settings | None = None
) -> str:
    """One sentence on what is happening to the job (for an operator); with the
    worker's ``settings``, the attempt and when it runs next."""
    if breaker.is_open and state.place in ("queued", "delayed", "in_flight", "unknown"):
        return _held(state, breaker, settings)
    if state.place in ("finished", "report_pending", "report_dead"):
        return _ended(state, actor_name)
    if state.place == "delayed":
        return _delayed(state.message, settings)
    if state.place == "in_flight" and state.message is not None and settings is not None:
        return f"{WAITING['in_flight']}, {attempt_line(settings, state.message.options)}"
    return WAITING[state.place]
