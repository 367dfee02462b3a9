"""The retry policy: which failures run a job again, after how long, and what it counts.

A job runs again by going back to the broker with a delay (:func:`send_again`), never by a
sleeping thread; what it has been through travels in its message options (:data:`OPTIONS`),
which every re-enqueued copy keeps.  Retries and waits back off through :func:`backoff`;
holds wait until a set time (the breaker's next probe, the end of Core's hold).

Which failures run a job again (and which middleware re-enqueues it), after how long:

- An unavailable LLM (:class:`~llm_worker.errors.LLMUnavailable` but a 429;
  ``CircuitBreaker``): held until the next probe (``LLM_PROBE_INTERVAL_SECONDS``, or the
  server's longer ``Retry-After``), marking :data:`HELD_SINCE`; no retry is spent.  A
  server error of a job's request while the LLM answers probes holds that job one probe
  interval and counts in :data:`SERVER_ERRORS`; at ``LLM_REQUEST_MAX_SERVER_ERRORS`` the
  job fails.
- No LLM capacity (:class:`~llm_worker.errors.LLMAtCapacity`) or a 429
  (:class:`~llm_worker.errors.LLMRateLimited`; ``LLMCapacity``): the job waits what the
  slot, bucket or cooldown says, at least :data:`MIN_CAPACITY_WAIT_SECONDS`, spread by up
  to a quarter; counted in :data:`CAPACITY_WAITS`, never a retry.  A job sent back at
  once because its user already has jobs waiting for capacity (fair share) waits a random
  time up to :data:`SHARE_WAIT_SECONDS` doubled with each of its capacity waits, at most
  :data:`MAX_SHARE_WAIT_SECONDS`; one whose user spent the daily token budget waits until
  the UTC day turns, spread by up to :data:`QUOTA_SPREAD_SECONDS`.
- An invalid answer (:class:`~llm_worker.errors.InvalidLLMResponse`;
  ``InvalidResponseBackoff``): asked again after ``LLM_RETRY_BACKOFF_SECONDS * 2**n``
  (n counts from 0, no jitter), with the answer and its problem as :data:`FEEDBACK`,
  counted in :data:`INVALID_RETRIES`; the job fails after ``LLM_MAX_RETRIES`` or
  ``LLM_JOB_MAX_SECONDS`` since :data:`FIRST_ATTEMPT_AT`.
- Another message of the same job holding its LLM lease
  (:class:`~llm_worker.errors.JobInProgress`; ``JobRetries``): sent again after
  ``JOB_RETRY_MIN_BACKOFF_SECONDS``, counted in :data:`LEASE_WAITS`, never a retry.
- Core refusing the worker's credentials (:class:`~llm_worker.errors.CoreUnauthorized`;
  ``JobRetries``): held ``CORE_UNAUTHORIZED_HOLD_SECONDS``, marking
  :data:`CORE_HELD_SINCE`; no retry is spent.
- A rejected job (:class:`~llm_worker.errors.JobRejected`, Core's refusal included) and an
  expired one (:class:`~llm_worker.errors.JobExpired`) never run again.
- Anything else: Dramatiq's own ``Retries`` (``dramatiq/middleware/retries.py``, under
  ``JobRetries``), up to ``JOB_MAX_RETRIES`` counted in :data:`RETRIES`, after
  ``dramatiq.common.compute_backoff``: ``JOB_RETRY_MIN_BACKOFF_SECONDS * 2**n`` stretched
  by up to twice, past ``JOB_RETRY_MAX_BACKOFF_SECONDS`` drawn between half of it and all
  of it.

An operator's requeue of a dead letter (``llm-worker requeue-dead``, or the dashboard's
Requeue button) is a fresh attempt:
:func:`requeued_message` drops every option of :data:`OPTIONS` whose ``on_requeue`` is
``"reset"`` (every counter, hold mark, feedback and usage of the earlier attempts), then
marks the message :data:`REQUEUED_AT` and :data:`CHECKED`.  The trace context
(``traceparent``, ``tracestate``) is kept, by every re-enqueued copy and by a requeue: every
attempt of a job is in the trace its producer started.
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass
from typing import Any, Literal

import dramatiq

from llm_worker.identity import AnyMessage, as_message
from llm_worker.llm.usage import USAGE_OPTION
from llm_worker.observability import tracing

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

#: Shortest re-enqueue delay of a job waiting for capacity, in seconds.
MIN_CAPACITY_WAIT_SECONDS = 0.1
#: Longest first re-enqueue delay of a job sent back because its user has jobs waiting
#: for capacity already (fair share); it doubles with each such wait, in seconds.
SHARE_WAIT_SECONDS = 0.5
#: Longest such delay ever, in seconds.
MAX_SHARE_WAIT_SECONDS = 2.0
#: Most seconds by which jobs held for a spent daily budget are spread after the day turns.
QUOTA_SPREAD_SECONDS = 60.0


@dataclass(frozen=True)
class MessageOption:
    """One option a job's message carries across re-enqueues.

    Attributes:
      name: the key in ``message.options``.
      meaning: what its value says.
      marks_requeued: whether it being set means the message is not a first delivery
        (a retry, a hold, a wait or an operator's requeue).
      counts_attempt: whether its value adds to the job's attempt number.
      on_requeue: what an operator's requeue does with it: ``"reset"`` drops it,
        ``"set"`` writes it afresh, ``"keep"`` leaves it.
    """

    name: str
    meaning: str
    marks_requeued: bool = False
    counts_attempt: bool = False
    on_requeue: Literal["reset", "set", "keep"] = "reset"


#: Every option this service, or Dramatiq for it, keeps about a job's attempts.
OPTIONS = (
    MessageOption(
        RETRIES, "Dramatiq's ordinary retries so far", marks_requeued=True, counts_attempt=True
    ),
    MessageOption("traceback", "Dramatiq's traceback of the last error retried"),
    MessageOption("requeue_timestamp", "Dramatiq's time of the last retry, in milliseconds"),
    MessageOption(
        INVALID_RETRIES, "invalid-answer retries so far", marks_requeued=True, counts_attempt=True
    ),
    MessageOption(FIRST_ATTEMPT_AT, "time of the first invalid answer"),
    MessageOption(FEEDBACK, "the last invalid answer and its problem"),
    MessageOption(SERVER_ERRORS, "server errors of the request while the LLM answered probes"),
    MessageOption(HELD_SINCE, "time the breaker first held the job back", marks_requeued=True),
    MessageOption(
        CORE_HELD_SINCE, "time Core first refused the credentials for it", marks_requeued=True
    ),
    MessageOption(
        LEASE_WAITS, "waits for the job's LLM lease held by another message", marks_requeued=True
    ),
    MessageOption(CAPACITY_WAITS, "waits for LLM capacity", marks_requeued=True),
    MessageOption(USAGE_OPTION, "the LLM tokens the job used so far"),
    MessageOption("redis_message_id", "the Redis broker's id of this copy of the message"),
    MessageOption(
        REQUEUED_AT,
        "time an operator requeued the dead letter",
        marks_requeued=True,
        on_requeue="set",
    ),
    MessageOption(CHECKED, "the job passed its send-time check", on_requeue="set"),
    MessageOption(
        tracing.TRACEPARENT,
        "the W3C trace context the job runs in (its producer's span)",
        on_requeue="keep",
    ),
    MessageOption(tracing.TRACESTATE, "the W3C trace state beside it", on_requeue="keep"),
)


def was_requeued(options: dict[str, Any]) -> bool:
    """Whether a message is a retry, a hold, a wait or an operator's requeue, not a first
    delivery."""
    return any(options.get(option.name) for option in OPTIONS if option.marks_requeued)


def attempt(options: dict[str, Any]) -> int:
    """The job's attempt number: 1 plus its ordinary and invalid-answer retries."""
    return 1 + sum(int(options.get(o.name) or 0) for o in OPTIONS if o.counts_attempt)


def requeued_options(options: dict[str, Any], *, now: float | None = None) -> dict[str, Any]:
    """The options of a dead letter an operator requeues: a fresh attempt.

    Every option of :data:`OPTIONS` reset on requeue is dropped; :data:`REQUEUED_AT` is
    set to ``now`` (seconds since the epoch, by default the current time) and
    :data:`CHECKED` to ``True`` (the job is checked at pick-up).  Other options (the
    actor's and the producer's) are kept.
    """
    reset = {option.name for option in OPTIONS if option.on_requeue == "reset"}
    fresh = {name: value for name, value in options.items() if name not in reset}
    fresh[REQUEUED_AT] = time.time() if now is None else now
    fresh[CHECKED] = True
    return fresh


def requeued_message(message: dramatiq.Message[Any]) -> dramatiq.Message[Any]:
    """A copy of a dead letter an operator requeues, with :func:`requeued_options`.

    Built with :func:`dataclasses.replace`: Dramatiq's ``Message.copy(options=...)``
    (``dramatiq/message.py``) merges the options it is given into the message's own, so
    it would keep every option meant to be dropped.
    """
    return dataclasses.replace(message, options=requeued_options(message.options))


def backoff(
    attempts: int,
    *,
    base: float,
    factor: float = 2.0,
    minimum: float = 0.0,
    spread: float = 0.0,
) -> float:
    """Seconds to wait before running a job again.

    ``max(minimum, base * factor**attempts)``, stretched by a random factor between 1 and
    ``1 + spread`` when ``spread`` is set (so waiters do not all come back at once).

    Parameters:
      attempts: re-enqueues of this kind done so far (0 for the first).
      base: the first delay, in seconds.
      factor: how much each attempt multiplies the delay by (1 keeps it fixed).
      minimum: the shortest delay, in seconds.
      spread: the largest stretch, as a fraction of the delay.
    """
    delay = max(minimum, base * factor**attempts)
    if spread:
        delay *= random.uniform(1.0, 1.0 + spread)
    return delay


def send_again(
    broker: dramatiq.Broker, message: AnyMessage, delay_seconds: float, *, reason: str = "retry"
) -> int:
    """Re-enqueue ``message`` (its options included) after ``delay_seconds``, at least one
    millisecond; return the delay asked of the broker, in milliseconds.

    The attempt's span gets an event ``job sent again`` with ``reason`` (``held``,
    ``capacity``, ``invalid_answer``, ``lease``, ``core_held``, ``retry``) and the delay.
    """
    delay_ms = max(1, int(delay_seconds * 1000))
    broker.enqueue(as_message(message), delay=delay_ms)
    tracing.add_event(
        "job sent again", {"llm_worker.reason": reason, "llm_worker.delay_ms": delay_ms}
    )
    return delay_ms
