"""Base of middleware that do their work in a background thread of each worker process."""

from __future__ import annotations

import logging
import threading

import dramatiq
from dramatiq.middleware import Middleware

from llm_worker.observability.logs import Throttle

logger = logging.getLogger(__name__)

#: While passes keep failing, the failure is logged in full once per this many seconds.
FAILURE_LOG_INTERVAL_SECONDS = 60.0


class PeriodicPass(Middleware):
    """Run :meth:`run_pass` every ``interval`` seconds in a thread of each worker process.

    The thread starts after the worker boots (when :meth:`runs_on` accepts the
    broker) and stops before it shuts down; an exception from a pass is logged
    and the next pass runs on time.  Passes failing in a row (Redis unreachable)
    are logged with their traceback once per :data:`FAILURE_LOG_INTERVAL_SECONDS`,
    at DEBUG in between, and the first pass that works again says how many failed.

    Parameters:
      interval: seconds between two passes.
    """

    #: Name of the thread, as shown by ``py-spy`` and in logs.
    thread_name = "llm-periodic"

    def __init__(self, *, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        """Whether the worker is shutting down (a long pass should return)."""
        return self._stop.is_set()

    @property
    def running(self) -> bool:
        """Whether this process's thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def runs_on(self, broker: dramatiq.Broker) -> bool:
        """Whether this middleware has work to do with ``broker``."""
        return True

    def run_pass(self, broker: dramatiq.Broker) -> None:
        """One pass of the work."""
        raise NotImplementedError

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if not self.runs_on(broker):
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(broker,), name=self.thread_name, daemon=True
        )
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self, broker: dramatiq.Broker) -> None:
        failed, in_full = 0, Throttle(FAILURE_LOG_INTERVAL_SECONDS)
        while not self._stop.wait(self.interval):
            try:
                self.run_pass(broker)
            except Exception as exc:  # Redis or Core unreachable: the next pass tries again
                failed += 1
                if in_full.due():
                    logger.exception(
                        "%s: pass failed (%d in a row, logged in full once per %.0fs); retrying",
                        self.thread_name,
                        failed,
                        FAILURE_LOG_INTERVAL_SECONDS,
                    )
                else:
                    logger.debug("%s: pass failed again: %r", self.thread_name, exc)
            else:
                if failed:
                    logger.warning(
                        "%s: passes work again after %d failed", self.thread_name, failed
                    )
                    failed = 0
                    in_full.reset()
