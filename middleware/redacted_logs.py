"""Keep message arguments out of a worker process's logs."""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.middleware import Middleware

from llm_worker.logs import RedactMessages


class RedactedLogs(Middleware):
    """Print messages in Dramatiq's own log lines as ``actor[message_id]``, never with
    their arguments, in every handler of the process's root logger.

    For workers that do not run :class:`~middleware.WorkerSetup` (the reference
    git worker, whose messages carry tool arguments and code).
    """

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        for handler in logging.getLogger().handlers:
            if not any(isinstance(f, RedactMessages) for f in handler.filters):
                handler.addFilter(RedactMessages())
