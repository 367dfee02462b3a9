"""Brokers that fail safe: a middleware hook that fails around a message leaves the
message for redelivery instead of letting it be acknowledged unprocessed."""

from __future__ import annotations

import logging
import time
from typing import Any

from dramatiq.middleware import Middleware, MiddlewareError, SkipMessage

logger = logging.getLogger("llm_worker.fail_safe")

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
    #: Seconds the worker thread waits after a failed hook, so a hook that keeps failing
    #: (its store away) does not redeliver the message in a tight loop.
    redelivery_pause_seconds: float = 0.0

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
            except Exception:
                logger.critical(
                    "%s failed before %s ran; it goes back on its queue for redelivery",
                    type(middleware).__name__,
                    message.message_id,
                    exc_info=True,
                )
                self._redeliver_after_pause(message)
                raise SkipMessage("a middleware failed: redelivered") from None

    def emit_after(self, signal: str, *args: Any, **kwargs: Any) -> None:
        """Dramatiq's, except that a hook that fails after a message was processed or
        skipped leaves the message for redelivery instead of acknowledging it."""
        if signal not in PROCESSING_SIGNALS:
            super().emit_after(signal, *args, **kwargs)  # type: ignore[misc]
            return
        message = args[0]
        failed = False
        for middleware in reversed(self.middleware):
            try:
                getattr(middleware, "after_" + signal)(self, *args, **kwargs)
            except Exception:
                logger.critical(
                    "%s failed after %s; it goes back on its queue for redelivery",
                    type(middleware).__name__,
                    message.message_id,
                    exc_info=True,
                )
                failed = True
        if failed:
            self._redeliver_after_pause(message)

    def _redeliver_after_pause(self, message: Any) -> None:
        self.redeliver(message)
        if self.redelivery_pause_seconds > 0:
            time.sleep(self.redelivery_pause_seconds)
