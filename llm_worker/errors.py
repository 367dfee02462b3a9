"""Exceptions raised by jobs, and how the middleware treats each of them.

::

    JobError                      every expected failure of a job
     +-- JobRejected              permanent: the job fails at once, no retry
     |    +-- InvalidPayload      the producer sent arguments that do not fit
     |    +-- ImageRefused        a job's referenced image cannot be read
     |    +-- LLMRequestRejected  the LLM refused the request itself (HTTP 400,
     |                            prompt over the context window)
     +-- LLMError                 the LLM could not give a usable answer
     |    +-- LLMUnavailable      unreachable, overloaded or misconfigured:
     |    |    |                  trips the circuit breaker
     |    |    +-- LLMRateLimited HTTP 429: a fleet-wide cooldown, not the breaker
     |    |    +-- FallbackUnavailable  the fallback LLM failed: its own breaker
     |    +-- LLMAtCapacity       no fleet capacity (slot, rate, cooldown) now:
     |    |                       re-enqueued shortly, never counted as a retry
     |    +-- InvalidLLMResponse  answered, but not with the JSON we asked for:
     |                            retried with exponential backoff and feedback
     +-- CoreAPIError             the Core API failed (no answer in time, 5xx,
          |                       408, 429): ordinary bounded retries
          +-- CoreRefused         Core refused the request for good (any other
          |                       4xx): the job fails at once (also a JobRejected)
          +-- CoreUnauthorized    Core refused our credentials (401, 403): jobs
                                  are held, not failed, until an operator fixes it
     +-- JobInProgress            another delivery of the same job is calling the LLM:
                                  the message waits, counting as no retry

:class:`SettingsError` and :class:`CommandError` are not job errors: they stop a
process or a command with one line.
"""

from __future__ import annotations

import secrets


class SettingsError(ValueError):
    """A setting from the environment is missing or invalid.

    The message is one line that names the environment variable.
    """


class CommandError(Exception):
    """An ``llm-worker`` command cannot go on; its message is printed as one line."""


class JobError(Exception):
    """Root of every expected failure of a job."""


class JobRejected(JobError):
    """The job can never succeed as sent: fail it without retrying."""


class InvalidPayload(JobRejected):
    """The job's arguments are missing, of the wrong type or unknown.

    Parameters:
      field: dotted name of the offending argument or payload field.
      problem: what is wrong with it.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"invalid payload: {field}: {problem}")


class ImageRefused(JobRejected):
    """The image a job references cannot be used."""


class LLMRequestRejected(JobRejected):
    """The LLM rejected the request itself, e.g. a prompt over its context window."""


class LLMError(JobError):
    """The LLM did not produce a usable answer."""


class LLMUnavailable(LLMError):
    """The LLM cannot be used right now; the circuit breaker holds jobs back.

    Parameters:
      retry_after: seconds the server asked us to wait (HTTP ``Retry-After``),
        or ``None`` when it did not say.
      needs_operator: ``True`` for failures only an operator can fix
        (bad credentials, unknown model).
      status: the HTTP status the server answered, or ``None`` when no answer came.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        needs_operator: bool = False,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.needs_operator = needs_operator
        self.status = status

    @property
    def is_server_error(self) -> bool:
        """Whether the server answered this request with an error of its own (HTTP 5xx),
        rather than saying it is overloaded (503, 529) or not answering at all."""
        return self.status is not None and self.status >= 500 and self.status not in (503, 529)


class LLMRateLimited(LLMUnavailable):
    """The LLM answered HTTP 429: it is up but limited.

    The fleet waits out a shared cooldown (``Retry-After``, capped by
    ``LLM_RETRY_AFTER_MAX_SECONDS``) instead of opening the circuit breaker.
    """


class FallbackUnavailable(LLMUnavailable):
    """The fallback LLM (``LLM_FALLBACK_BASE_URL``) could not be used; opens its own breaker."""


class LLMAtCapacity(LLMError):
    """No LLM capacity for this job now: every slot is taken, a rate limit is spent,
    or the fleet is cooling down after a 429.

    Parameters:
      wait_seconds: when capacity is likely again, in seconds from now.
      reason: ``slots``, ``requests``, ``tokens``, ``priority``, ``cooldown``, ``turn``
        (another user's job goes first), ``share_limit`` (the user's own limit) or
        ``quota`` (the user's daily token budget is spent).
      sent_back: the job did not wait on its thread: its user had jobs waiting there
        already, or its budget is spent.
    """

    def __init__(self, wait_seconds: float, reason: str, *, sent_back: bool = False) -> None:
        super().__init__(f"no LLM capacity ({reason}); waiting {wait_seconds:.2f}s")
        self.wait_seconds = wait_seconds
        self.reason = reason
        self.sent_back = sent_back


class JobExpired(LLMError):
    """The job reached its expiry age (``LLM_UNAVAILABLE_EXPIRY_SECONDS``) while it waited
    on its worker thread (for LLM capacity, a cooldown): it is expired instead of calling
    the LLM, as if it had been picked up that late."""


class InvalidLLMResponse(LLMError):
    """The LLM answered with something that is not the requested JSON object.

    Parameters:
      problem: the validation message, fed back to the model on the next try.
      answer: the raw answer text (possibly truncated), for that feedback.
    """

    def __init__(self, problem: str, *, answer: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.answer = answer


class JobInProgress(JobError):
    """Another delivery of the same job (job type and ``job_id``) holds its LLM lease.

    Parameters:
      holder: the delivery holding it (``{message_id}/{delivery}``).
    """

    def __init__(self, holder: str) -> None:
        super().__init__(f"another delivery ({holder}) of this job is calling the LLM")
        self.holder = holder


class CoreAPIError(JobError):
    """The Core API could not be reached or answered with an error status.

    Parameters:
      status: the HTTP status, or ``None`` when no answer came.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


#: Core statuses that may change on retry: timeouts and rate limits (5xx too).
CORE_TRANSIENT_STATUSES = {408, 425, 429}
#: Core statuses that mean the worker's credentials are wrong.
CORE_UNAUTHORIZED_STATUSES = {401, 403}


class CoreRefused(CoreAPIError, JobRejected):
    """Core refused the request and will refuse it again (404, 409, 410, 422, 400, 413...)."""


class CoreUnauthorized(CoreAPIError):
    """Core refused the worker's credentials (401, 403): a misconfiguration."""


def core_error(message: str, status: int) -> CoreAPIError:
    """The error class for an HTTP error answer of Core.

    5xx, 408, 425 and 429 are :class:`CoreAPIError` (retried), 401 and 403
    :class:`CoreUnauthorized`, any other status :class:`CoreRefused`.
    """
    if status >= 500 or status in CORE_TRANSIENT_STATUSES or status < 400:
        return CoreAPIError(message, status=status)
    if status in CORE_UNAUTHORIZED_STATUSES:
        return CoreUnauthorized(message, status=status)
    return CoreRefused(message, status=status)


def failure_reason(exc: BaseException) -> tuple[str, str | None]:
    """What Core and the user are told of a job that failed with ``exc``, and the log
    reference that goes with it.

    An expected failure (a :class:`JobError`) says its own message, written for them;
    an exception with no message says its class (Dramatiq's ``TimeLimitExceeded``).  Any
    other exception is unexpected: its text may hold anything (a path, a query, a
    secret), so the reason is its class and a reference (``None`` otherwise) that the
    worker's log line of the failure carries beside the text.
    """
    text = str(exc)
    if isinstance(exc, JobError) or not text:
        return text or type(exc).__name__, None
    reference = secrets.token_hex(6)
    return f"unexpected error {type(exc).__name__} (worker log reference {reference})", reference
