"""Apply ``LOG_FORMAT`` and ``LOG_CONTENT`` to a worker process that has no ``WorkerSetup``."""

from __future__ import annotations

import dramatiq
from dramatiq.middleware import Middleware

from llm_worker.observability.logs import configure_logging
from llm_worker.services import services


class LogSetup(Middleware):
    """Set a worker process's logging up when it boots (the reference git worker).

    Without ``LOG_CONTENT=true`` every log line shows messages as
    ``actor[message_id]``, never their arguments (diffs, tool arguments,
    comments), and the HTTP client libraries log at WARNING at most.
    """

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        configure_logging(services().settings)
