"""A job's own Redis bookkeeping in as few round trips as its guarantees allow.

A completed job makes three round trips of its own:

1. at pick-up, one pipeline reads whether the job already finished and the
   LLM results an earlier attempt stored (:func:`load_record`);
2. once the model gave a valid answer, one transaction stores it for retries
   (:func:`store_result`), before Core is told, so that a retry or a
   redelivery sends Core the same result without asking the model again;
3. once Core accepted the completed state, one Lua script publishes each
   notification (at most once) and marks the job finished, atomically
   (:meth:`~llm_worker.notify.Notifier.publish_and_mark`).
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field

from . import keys
from .services import Services


@dataclass(frozen=True)
class JobRecord:
    """What Redis knows of a job when a worker picks it up.

    Parameters:
      finished: the terminal state it already reached, or ``None``.
      results: valid LLM results stored by earlier attempts, by result model name.
    """

    finished: str | None = None
    results: dict[str, bytes] = field(default_factory=dict)


#: The record loaded for the message this thread (or greenlet) is processing.
_current: contextvars.ContextVar[tuple[str, JobRecord] | None] = contextvars.ContextVar(
    "llmw_job_record", default=None
)


def load_record(svc: Services, message_id: str) -> JobRecord:
    """Read the job's finished marker and stored results in one round trip."""
    prefix = svc.settings.key_prefix
    pipe = svc.redis.pipeline(transaction=False)
    pipe.get(keys.finished(prefix, message_id))
    pipe.hgetall(keys.job_results(prefix, message_id))
    finished, results = pipe.execute()
    return JobRecord(
        finished=finished.decode() if finished else None,
        results={name.decode(): raw for name, raw in results.items()},
    )


def remember(message_id: str, record: JobRecord) -> None:
    """Keep ``record`` for the rest of this message's processing (see :func:`stored_result`)."""
    _current.set((message_id, record))


def forget() -> None:
    """Drop the record kept by :func:`remember`."""
    _current.set(None)


def stored_result(svc: Services, message_id: str, result_name: str) -> bytes | None:
    """The result ``result_name`` an earlier attempt stored: from the record read at
    pick-up when there is one for this message, else from Redis."""
    current = _current.get()
    if current is not None and current[0] == message_id:
        return current[1].results.get(result_name)
    raw = svc.redis.hget(keys.job_results(svc.settings.key_prefix, message_id), result_name)
    return bytes(raw) if raw is not None else None


def store_result(svc: Services, message_id: str, result_name: str, raw: str) -> None:
    """Store a valid LLM result for ``JOB_RESULT_TTL_SECONDS``, in one transaction."""
    key = keys.job_results(svc.settings.key_prefix, message_id)
    pipe = svc.redis.pipeline(transaction=True)
    pipe.hset(key, result_name, raw)
    pipe.expire(key, svc.settings.job_result_ttl_seconds)
    pipe.execute()
