"""Brokers that fail safe: a middleware hook that fails around a message leaves the
message for redelivery instead of letting it be acknowledged unprocessed."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any

from dramatiq.middleware import Middleware, MiddlewareError, SkipMessage

from llm_worker.observability import metrics
from llm_worker.observability.logs import Throttle

logger = logging.getLogger("llm_worker.fail_safe")

#: The pause after a message's first failed hook, in seconds; it doubles with each
#: failure of the same message in a row, up to :data:`MAX_PAUSE_SECONDS`.
FIRST_PAUSE_SECONDS = 0.05
#: The longest pause after a failed hook, in seconds.
MAX_PAUSE_SECONDS = 5.0
#: A message's failing hooks are logged once per this many seconds (with a traceback once per
#: this many seconds for the whole process).
LOG_INTERVAL_SECONDS = 60.0
#: Messages whose failures are remembered at once (the oldest are forgotten first).
REMEMBERED_MESSAGES = 10_000


class HookFailures:
    """How often each message's hooks failed in a row, and when that was last logged."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._traces = Throttle(LOG_INTERVAL_SECONDS)

    def trace_due(self, now: float) -> bool:
        """Whether a logged failure carries its traceback: once per
        :data:`LOG_INTERVAL_SECONDS` for the whole process, since while Redis is away every
        message fails the same way."""
        return self._traces.due(now=now)

    def failed(self, message_id: str, now: float) -> tuple[float, bool]:
        """Note a failure of ``message_id``'s hooks: the pause before it goes back on its
        queue, and whether to log this one in full."""
        with self._lock:
            count, logged_at = self._seen.pop(message_id, (0, float("-inf")))
            count += 1
            log = now - logged_at >= LOG_INTERVAL_SECONDS
            self._seen[message_id] = (count, now if log else logged_at)
            while len(self._seen) > REMEMBERED_MESSAGES:
                self._seen.popitem(last=False)
        return min(MAX_PAUSE_SECONDS, FIRST_PAUSE_SECONDS * 2 ** (count - 1)), log

    def succeeded(self, message_id: str) -> None:
        """``message_id``'s hooks all worked: its next failure starts afresh."""
        with self._lock:
            self._seen.pop(message_id, None)


#: Signals around a message's processing whose failed hooks leave the message for redelivery.
PROCESSING_SIGNALS = {"process_message", "skip_message"}


class FailSafeHooks:
    """Mixin for a Dramatiq broker (put it first among the bases) that fails safe.

    Dramatiq logs and ignores a middleware hook that raises: a failed
    ``before_process_message`` hook (the expiry, stale or finished check, Redis away at
    pick-up) lets the actor run unchecked, and a failed ``after_process_message`` or
    ``after_skip_message`` hook (a retry's or a hold's re-enqueue, a report stored in
    the outbox) lets the message be acknowledged while nothing replaced it.  Here a
    failing before-hook skips the message, and any failing hook around its processing
    leaves it for redelivery: :meth:`redeliver` marks it, and the broker's consumer puts
    it back on its queue instead of acknowledging or dead-lettering it.

    Works around ``Broker.emit_before`` and ``Broker.emit_after`` (``dramatiq/broker.py``):
    ``emit_before`` re-raises only a ``MiddlewareError`` (``SkipMessage`` included) and
    logs any other exception of a ``before_*`` hook ("Unexpected failure in ...", at
    CRITICAL) and goes on, so ``WorkerThread.process_message`` (``dramatiq/worker.py``)
    runs the actor; ``emit_after`` logs and goes on after every exception of an
    ``after_*`` hook, so ``ConsumerThread.post_process_message`` then acknowledges the
    message (or dead-letters it, if failed).  Both are replaced for the signals
    :data:`PROCESSING_SIGNALS` only; every other signal goes to Dramatiq's.
    """

    middleware: list[Middleware]
    #: Least seconds the worker thread waits after a failed hook.  The wait grows for a
    #: message whose hooks keep failing (its store away), from
    #: :data:`FIRST_PAUSE_SECONDS` doubling up to :data:`MAX_PAUSE_SECONDS`, so it is not
    #: redelivered in a tight loop; its traceback is logged once per
    #: :data:`LOG_INTERVAL_SECONDS`, every failure counted in ``llm_hook_failures_total``.
    redelivery_pause_seconds: float = 0.0
    _hook_failures: HookFailures | None = None

    def _failures(self) -> HookFailures:
        if self._hook_failures is None:
            self._hook_failures = HookFailures()
        return self._hook_failures

    def redeliver(self, message: Any) -> None:
        """Put ``message`` back on its queue when its worker is done, instead of
        acknowledging or dead-lettering it."""
        raise NotImplementedError

    def emit_before(self, signal: str, *args: Any, **kwargs: Any) -> None:
        """Dramatiq's, except that a ``before_process_message`` hook that fails skips
        the message and leaves it for redelivery, instead of letting the actor run."""
        if signal != "process_message":
            super().emit_before(signal, *args, **kwargs)  # type: ignore[misc]
            return
        message = args[0]
        for middleware in self.middleware:
            try:
                middleware.before_process_message(self, *args, **kwargs)  # type: ignore[arg-type]
            except MiddlewareError:
                raise
            except Exception as exc:
                self._hook_failed(f"{type(middleware).__name__} failed before", message, exc)
                raise SkipMessage("a middleware failed: redelivered") from None
        if self._hook_failures is not None:  # nothing to forget until a hook first failed
            self._hook_failures.succeeded(message.message_id)

    def emit_after(self, signal: str, *args: Any, **kwargs: Any) -> None:
        """Dramatiq's, except that a hook that fails after a message was processed or
        skipped leaves the message for redelivery instead of acknowledging it."""
        if signal not in PROCESSING_SIGNALS:
            super().emit_after(signal, *args, **kwargs)  # type: ignore[misc]
            return
        message = args[0]
        failures: list[tuple[str, Exception]] = []
        for middleware in reversed(self.middleware):
            try:
                getattr(middleware, "after_" + signal)(self, *args, **kwargs)
            except Exception as exc:
                failures.append((f"{type(middleware).__name__} failed after", exc))
        if failures:
            what = "; ".join(name for name, _ in failures)
            self._hook_failed(what, message, failures[0][1], hook="after")

    def _hook_failed(
        self, what: str, message: Any, exc: Exception, *, hook: str = "before"
    ) -> None:
        """Count and log a failed hook, mark ``message`` for redelivery and pause the
        worker thread (longer for each failure of the same message in a row)."""
        metrics.count_hook_failure(hook)
        pause, log_in_full = self._failures().failed(message.message_id, time.monotonic())
        pause = max(pause, self.redelivery_pause_seconds)
        if log_in_full:
            traced = self._failures().trace_due(time.monotonic())
            logger.critical(
                "%s %s%s; it goes back on its queue for redelivery (after %.2fs; the next "
                "failures of this message within %.0fs are logged at DEBUG)",
                what,
                message.message_id,
                "" if traced else f": {exc!r}",
                pause,
                LOG_INTERVAL_SECONDS,
                exc_info=exc if traced else None,
            )
        else:
            logger.debug(
                "%s %s again: %s; redelivered after %.2fs", what, message.message_id, exc, pause
            )
        self.redeliver(message)
        time.sleep(pause)
