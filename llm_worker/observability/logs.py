"""Log formatting and redaction.

User content (message text, email bodies, image paths, payloads) and secrets
never reach the logs unless ``LOG_CONTENT=true``: Dramatiq's own log lines
print messages with their arguments, so every record passes a filter that
replaces messages by ``actor[message_id]``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import dramatiq
import redis
from dramatiq.broker import MessageProxy

from llm_worker.settings import Settings

#: Attributes of a record that :class:`JsonFormatter` copies when set (``extra=``).
JOB_FIELDS = (
    "actor",
    "job_id",
    "user_id",
    "attempt",
    "duration_ms",
    "prompt_tokens",
    "completion_tokens",
    "outcome",
)


def redact_message(value: Any) -> Any:
    """A Dramatiq message as ``actor[message_id]``; anything else unchanged."""
    if isinstance(value, dramatiq.Message | MessageProxy):
        return f"{value.actor_name}[{value.message_id}]"
    return value


#: Dramatiq's debug line that prints an actor's arguments (``Actor.__call__``).
ACTOR_ARGUMENTS_LOG = "Received args=%r kwargs=%r."


class RedactMessages(logging.Filter):
    """Replace message arguments in log records by their actor and id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == ACTOR_ARGUMENTS_LOG:
            record.args = ("(redacted)", "(redacted)")
        elif isinstance(record.args, tuple):
            record.args = tuple(redact_message(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact_message(v) for k, v in record.args.items()}
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, job fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for field in JOB_FIELDS:
            if hasattr(record, field):
                entry[field] = getattr(record, field)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


#: Dramatiq's warning for every message a middleware skipped. Here a skip is always this
#: service's doing (a job held by the breaker, stale, expired, invalid, already finished)
#: and has its own line (``job held: ...``, ``job skipped: ...``), so it is dropped.
SKIPPED_LOG = "Message %s was skipped."

#: Dramatiq's line each time a consumer thread stops its consumer, which it also does
#: whenever the consumer is paused (the breaker pausing the LLM queues).
CONSUMER_RESTART_LOG = "Restarting consumer in %0.2f seconds."


#: Dramatiq's CRITICAL line each time a consumer thread loses its broker connection.
CONSUMER_CONNECTION_ERROR_LOG = "Consumer encountered a connection error: %s"

#: Dramatiq's ERROR line, with its traceback, for a message whose actor raised.
UNHANDLED_EXCEPTION_LOG = "Failed to process message %s with unhandled exception."

#: While the broker stays unreachable, each consumer thread's connection error and restart
#: lines are let through once per this many seconds per process (the first at once).
REPEATED_LINE_INTERVAL_SECONDS = 60.0


class Throttle:
    """Says when something repeated may be logged again: once per ``seconds`` per key, the
    first time at once (thread-safe).

    Parameters:
      seconds: the interval.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}

    def due(self, key: str = "", now: float | None = None) -> bool:
        """Whether ``key``'s interval has passed (``now``: ``time.monotonic()``); if so, a
        new interval starts."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if now - self._last.get(key, float("-inf")) < self.seconds:
                return False
            self._last[key] = now
            return True

    def reset(self, key: str = "") -> None:
        """Make ``key`` due at once again."""
        with self._lock:
            self._last.pop(key, None)


class DropRoutineDramatiqLines(logging.Filter):
    """Drop Dramatiq's lines that repeat this service's own or describe no event.

    - ``Message ... was skipped.`` (WARNING), see :data:`SKIPPED_LOG`;
    - ``Restarting consumer in 3.00 seconds.`` from a consumer the breaker paused
      (one per queue and process during an outage);
    - while the broker is unreachable, every consumer thread (one per queue and delay
      queue) logs a connection error and a restart every 3 s: those two lines pass once
      per :data:`REPEATED_LINE_INTERVAL_SECONDS` per process, so a host cut from Redis
      says so without filling its log;
    - every job that meets the unreachable Redis ends with Dramatiq's ``Failed to process
      message ... with unhandled exception.`` and the same chained traceback: the line
      stays (with the error's text), its traceback is kept once per interval per process.
    """

    def __init__(self) -> None:
        super().__init__()
        self._repeated = Throttle(REPEATED_LINE_INTERVAL_SECONDS)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == SKIPPED_LOG:
            return False
        if record.msg == CONSUMER_RESTART_LOG and getattr(
            threading.current_thread(), "paused", False
        ):
            return False
        if record.msg in (CONSUMER_CONNECTION_ERROR_LOG, CONSUMER_RESTART_LOG):
            return self._repeated.due(str(record.msg))
        if record.msg == UNHANDLED_EXCEPTION_LOG and record.exc_info:
            self._shorten_if_repeated(record, record.exc_info[1])
        return True

    def _shorten_if_repeated(self, record: logging.LogRecord, error: BaseException | None) -> None:
        """Drop the traceback of a job's Redis connection error but once per interval."""
        if not isinstance(error, redis.ConnectionError | redis.TimeoutError):
            return
        if self._repeated.due(f"{UNHANDLED_EXCEPTION_LOG} {type(error).__name__}"):
            return
        record.msg = f"{UNHANDLED_EXCEPTION_LOG[:-1]}: %s: %s."
        args = record.args if isinstance(record.args, tuple) else ()
        record.args = (*args, type(error).__name__, error)
        record.exc_info = None
        record.exc_text = None


#: Client libraries whose debug logs print request bodies (prompts).
CONTENT_LOGGERS = ("openai", "anthropic", "httpx", "httpcore", "urllib3")


def configure_logging(settings: Settings) -> None:
    """Apply ``LOG_FORMAT`` and ``LOG_CONTENT`` to every handler of the root logger.

    Without ``LOG_CONTENT`` the HTTP client libraries log at WARNING at most,
    since their debug lines carry whole prompts. Dramatiq's routine lines that
    repeat this service's own are dropped (:class:`DropRoutineDramatiqLines`).
    """
    if not settings.log_content:
        for name in CONTENT_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, DropRoutineDramatiqLines) for f in handler.filters):
            handler.addFilter(DropRoutineDramatiqLines())
        if settings.log_format == "json":
            handler.setFormatter(JsonFormatter())
        if not settings.log_content and not any(
            isinstance(f, RedactMessages) for f in handler.filters
        ):
            handler.addFilter(RedactMessages())
