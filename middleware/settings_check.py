"""Stop a worker process at boot when its settings are invalid."""

from __future__ import annotations

import logging
import sys

import dramatiq
from dramatiq.middleware import Middleware

from llm_worker.errors import SettingsError
from llm_worker.services import services

logger = logging.getLogger(__name__)


class SettingsCheck(Middleware):
    """Read and validate every setting when a worker process boots.

    An invalid setting prints one line naming the variable and exits the
    process with status 2, instead of failing jobs later.  A valid
    configuration is logged (endpoints and models, never keys).
    """

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        try:
            config = services().settings
        except SettingsError as exc:
            print(f"llm-worker: invalid setting {exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
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
