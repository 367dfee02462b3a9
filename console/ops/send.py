"""``llm-worker send``: enqueue one job, optionally wait for its notification."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from dramatiq import Message

from actors import JOB_ACTORS, broker
from llm_worker.errors import CommandError
from llm_worker.services import Services
from middleware import breaker_status
from middleware.job_arguments import InvalidJob, SendCheckFailed

from .job_state import JobState, explain, finished_job, job_state

#: Notification types that mean the job did not succeed.
FAILURE_TYPES = {"llm_failure", "llm_expiry"}


def parse_job_id(text: str) -> str | int:
    """``"42"`` becomes the integer 42; anything else stays a string."""
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def send_job(
    svc: Services,
    actor_name: str,
    job_id: str | int,
    user_id: int,
    payload_text: str,
    wait: float | None,
) -> int:
    """Enqueue a job; with ``wait``, print its first notification (exit 1 for a failure)."""
    actor = JOB_ACTORS.get(actor_name)
    if actor is None:
        raise CommandError(f"unknown actor {actor_name!r}; one of {', '.join(sorted(JOB_ACTORS))}")
    try:
        payload = json.loads(payload_text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"--payload is not JSON: {exc}") from None
    stream = svc.settings.notify_stream
    last = svc.redis.xrevrange(stream, count=1)
    cursor = last[0][0] if last else b"0-0"
    try:
        message = actor.send(job_id, user_id, payload)
    except (InvalidJob, SendCheckFailed) as exc:
        raise CommandError(str(exc)) from None
    print(f"sent {actor_name} job {job_id!r} (message {message.message_id})", flush=True)
    if wait is None:
        return 0
    note = wait_for_notification(svc, stream, cursor, job_id, wait, message=message)
    if isinstance(note, JobEnd):
        print(f"job {job_id!r}: {note.text}")
        return 0 if note.status == "completed" else 1
    print(json.dumps(note, ensure_ascii=False, indent=2))
    return 1 if note["message_type"] in FAILURE_TYPES else 0


@dataclass(frozen=True)
class JobEnd:
    """A job that ended in a state that sends no notification: its status and why."""

    status: str
    text: str


def situation(svc: Services, message: Message[Any]) -> tuple[JobState, str]:
    """Where the job of ``message`` is, and a sentence saying so to an operator."""
    state = job_state(broker, svc, message)
    return state, explain(state, breaker_status(), message.actor_name, svc.settings)


def ended_silently(svc: Services, message: Message[Any]) -> JobEnd | None:
    """The job's end if it sends no notification: completed without one, or skipped
    (a failed or expired job's notification follows once Core accepted its report)."""
    state = finished_job(svc, message.message_id)
    if state is None or state.place != "finished" or state.status not in ("completed", "skipped"):
        return None
    return JobEnd(
        state.status or "", explain(state, breaker_status(), message.actor_name, svc.settings)
    )


def _next_note(
    svc: Services, stream: str, cursor: bytes, job_id: str | int, block_ms: int | None
) -> tuple[dict[str, Any] | None, bytes]:
    """The first notification about ``job_id`` after ``cursor`` (waiting up to
    ``block_ms``, or not at all), and the new cursor."""
    for _, entries in svc.redis.xread({stream: cursor}, block=block_ms) or []:
        for entry_id, fields in entries:
            cursor = entry_id
            note = json.loads(fields[b"data"])
            if note.get("job_id") == job_id:
                return dict(note), cursor
    return None, cursor


def wait_for_notification(
    svc: Services,
    stream: str,
    cursor: bytes,
    job_id: str | int,
    timeout: float,
    *,
    message: Message[Any] | None = None,
) -> dict[str, Any] | JobEnd:
    """The first notification about ``job_id`` on the stream after ``cursor``; with the
    job's ``message``, its end as soon as it ended in a state that sends none.

    Raises:
      CommandError: when neither comes within ``timeout`` seconds, saying what is
        happening to the job (breaker open, held, Core refusing its report, queued...).
    """
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        block_ms = max(1, int(min(remaining, 1.0) * 1000))
        note, cursor = _next_note(svc, stream, cursor, job_id, block_ms)
        if note is not None:
            return note
        end = ended_silently(svc, message) if message is not None else None
        if end is not None:
            # A job's notifications are published before it is marked finished: read
            # what came in since the last look before saying there was none.
            note, cursor = _next_note(svc, stream, cursor, job_id, None)
            return note if note is not None else end
    why = situation(svc, message)[1] if message is not None else "check Core and the worker's log"
    raise CommandError(f"no notification for job {job_id!r} within {timeout:g}s: {why}")
