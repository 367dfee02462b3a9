"""``llm-worker send``: enqueue one job, optionally wait for its notification."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from ..errors import CommandError
from ..services import Services

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
    from actors import JOB_ACTORS

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
    from middleware.job_arguments import InvalidJob, SendCheckFailed

    try:
        message = actor.send(job_id, user_id, payload)
    except (InvalidJob, SendCheckFailed) as exc:
        raise CommandError(str(exc)) from None
    print(f"sent {actor_name} job {job_id!r} (message {message.message_id})", flush=True)
    if wait is None:
        return 0
    note = wait_for_notification(svc, stream, cursor, job_id, wait)
    print(json.dumps(note, ensure_ascii=False, indent=2))
    return 1 if note["message_type"] in FAILURE_TYPES else 0


def wait_for_notification(
    svc: Services, stream: str, cursor: bytes, job_id: str | int, timeout: float
) -> dict[str, Any]:
    """The first notification about ``job_id`` on the stream after ``cursor``.

    Raises:
      CommandError: when none arrives within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        block_ms = max(1, int(min(remaining, 1.0) * 1000))
        for _, entries in svc.redis.xread({stream: cursor}, block=block_ms) or []:
            for entry_id, fields in entries:
                cursor = entry_id
                note = json.loads(fields[b"data"])
                if note.get("job_id") == job_id:
                    return dict(note)
    raise CommandError(
        f"no notification for job {job_id!r} within {timeout:g}s "
        "(task_match without a match and email_extract without events send none: check Core)"
    )
