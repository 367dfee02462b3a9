"""Worker process set-up: settings check, logging, metrics."""

from __future__ import annotations

import logging
import sys

import dramatiq
from dramatiq.middleware import Middleware

from llm_worker import metrics
from llm_worker.constrained import check_enforceable
from llm_worker.errors import SettingsError
from llm_worker.logs import configure_logging
from llm_worker.services import services

logger = logging.getLogger(__name__)


class WorkerSetup(Middleware):
    """Set a worker process up when it boots.

    - Reads and validates every setting: an invalid one prints one line
      naming the variable and exits the process with status 2, instead of
      failing jobs later.  With ``LLM_RESPONSE_FORMAT=llguidance`` every answer
      schema is compiled the same way: one the engine cannot enforce exits too.
    - Applies ``LOG_FORMAT`` and ``LOG_CONTENT`` to the process's logging.
    - Creates this service's metrics when ``METRICS_ENABLED``.
    - Logs the provider, endpoints and models chosen, and why (never keys).

    Put it first in the stack: its ``after_process_boot`` then runs after
    Dramatiq's ``Prometheus`` middleware has set up the metrics registry.
    """

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        try:
            config = services().settings
        except SettingsError as exc:
            print(f"llm-worker: invalid setting {exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        try:
            services().prompt_profile  # noqa: B018 (a bad LLM_PROMPTS_FILE stops the boot)
            if config.llm_response_format == "llguidance":
                check_enforceable()
        except SettingsError as exc:
            print(f"llm-worker: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        configure_logging(config)
        if config.metrics_enabled:
            metrics.enable()
        choice = services().provider_choice
        logger.info(
            "LLM provider %s at %s (%s); text model %s, vision model %s; Core at %s",
            choice.name,
            choice.url,
            choice.reason,
            config.llm_text_model,
            config.llm_vision_model,
            config.core_api_url,
        )
