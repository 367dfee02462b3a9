"""Deliver the outbox's pending job reports to Core from every worker process."""

from __future__ import annotations

import logging
import threading

import dramatiq
from dramatiq.middleware import Middleware

from llm_worker.services import services

logger = logging.getLogger(__name__)


class ReportOutboxDrain(Middleware):
    """Run a thread per worker process that delivers due reports from the outbox.

    Failed, skipped and expired jobs are reported through
    :class:`~llm_worker.outbox.ReportOutbox`; a report Core did not accept at
    once is retried here with exponential backoff (``JOB_RETRY_MIN_BACKOFF_SECONDS``
    doubling up to ``JOB_RETRY_MAX_BACKOFF_SECONDS``, ``JOB_MAX_RETRIES``
    attempts).  Reports are leased while delivered, so two processes never
    deliver the same one at the same time.

    Parameters:
      interval: seconds between looks at the outbox.
    """

    def __init__(self, *, interval: float = 1.0) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="llm-report-outbox", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                while services().outbox.drain() and not self._stop.is_set():
                    pass  # a full batch went through: look again at once
            except Exception:
                logger.exception("report outbox drain failed; retrying")
