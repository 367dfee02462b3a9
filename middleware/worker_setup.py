"""Worker process set-up: settings check, logging, metrics."""

from __future__ import annotations

import logging
import sys

import dramatiq
from dramatiq.middleware import Middleware

from llm_worker import metrics
from llm_worker.errors import SettingsError
from llm_worker.logs import configure_logging
from llm_worker.services import services

logger = logging.getLogger(__name__)


class WorkerSetup(Middleware):
    """Set a worker process up when it boots.

    - Reads and validates every setting: an invalid one prints one line
      naming the variable and exits the process with status 2, instead of
      failing jobs later.
    - Applies ``LOG_FORMAT`` and ``LOG_CONTENT`` to the process's logging.
    - Creates this service's metrics when ``METRICS_ENABLED``.
    - Logs the provider, endpoints and models chosen, and why (never keys).
    - Builds the provider, so its SDK is imported at boot (producers never import it)
      rather than by the first job or probe.

    Put it first in the stack: its ``after_process_boot`` then runs after
    Dramatiq's ``Prometheus`` middleware has set up the metrics registry.
    """

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        try:
            config = services().settings
        except SettingsError as exc:
            print(f"llm-worker: invalid setting {exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        configure_logging(config)
        if config.metrics_enabled:
            metrics.enable()
        choice = services().provider_choice
        services().llm  # noqa: B018 (imports the provider's SDK now; connects to nothing)
        logger.info(
            "LLM provider %s at %s (%s); text model %s, vision model %s; Core at %s",
            choice.name,
            choice.url,
            choice.reason,
            config.llm_text_model,
            config.llm_vision_model,
            config.core_api_url,
        )
