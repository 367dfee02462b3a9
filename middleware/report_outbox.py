"""Deliver the outbox's pending job reports to Core from every worker process."""

from __future__ import annotations

import dramatiq

from llm_worker.services import services

from .periodic import PeriodicPass


class ReportOutboxDrain(PeriodicPass):
    """Run a thread per worker process that delivers due reports from the outbox.

    Failed, skipped and expired jobs are reported through
    :class:`~llm_worker.core.outbox.ReportOutbox`; a report Core did not accept at
    once is retried here with exponential backoff (``JOB_RETRY_MIN_BACKOFF_SECONDS``
    doubling up to ``JOB_RETRY_MAX_BACKOFF_SECONDS``, ``JOB_MAX_RETRIES``
    attempts).  Reports are leased while delivered, so two processes never
    deliver the same one at the same time.

    Parameters:
      interval: seconds between looks at the outbox.
    """

    thread_name = "llm-report-outbox"

    def __init__(self, *, interval: float = 1.0) -> None:
        super().__init__(interval=interval)

    def run_pass(self, broker: dramatiq.Broker) -> None:
        """Deliver due reports, batch after batch while full batches go through."""
        while services().outbox.drain() and not self.stopping:
            pass
