"""Each worker process's liveness file, for ``llm-worker health``."""

from __future__ import annotations

import dramatiq

from llm_worker.fleet import liveness
from llm_worker.services import services

from .periodic import PeriodicPass


class LivenessBeat(PeriodicPass):
    """Touch ``LIVENESS_DIR/worker-{pid}`` at boot and every few seconds; remove it at
    shutdown (see :mod:`llm_worker.fleet.liveness`).

    Parameters:
      interval: seconds between two beats.
    """

    thread_name = "llm-liveness"

    def __init__(self, *, interval: float = liveness.BEAT_INTERVAL_SECONDS) -> None:
        super().__init__(interval=interval)

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        liveness.beat(services().settings.liveness_dir)
        super().after_worker_boot(broker, worker)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        super().before_worker_shutdown(broker, worker)
        liveness.forget(services().settings.liveness_dir)

    def run_pass(self, broker: dramatiq.Broker) -> None:
        """Write the file again."""
        liveness.beat(services().settings.liveness_dir)
