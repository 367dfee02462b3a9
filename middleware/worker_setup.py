"""Worker process set-up: settings check, logging, metrics."""

from __future__ import annotations

import logging
import resource
import sys

import dramatiq
from dramatiq.middleware import Middleware

from llm_worker.broker.redis_broker import RecoveringRedisBroker
from llm_worker.errors import SettingsError
from llm_worker.jobs.registry import answer_schemas
from llm_worker.llm.constrained import check_enforceable
from llm_worker.observability import metrics
from llm_worker.observability.logs import configure_logging
from llm_worker.review.schemas import review_schemas
from llm_worker.services import POOL_WAIT_SECONDS, pool_size_for, services
from llm_worker.text import safe_url

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
    - Builds the provider, so its SDK is imported at boot (producers never import it)
      rather than by the first job or probe.
    - Bounds the process's Redis connection pools for its number of worker
      threads (or greenlets, under gevent): the service's own pool, and the
      Redis broker's, which also serves one consumer per queue and delay queue.
    - Raises the process's soft limit of open files, up to its hard limit, to
      what that many threads need (``2 x threads + 100``: a connection each to
      the LLM and to Core, plus Redis and the rest), warning when it cannot.

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
            services().prices  # noqa: B018 (and so does a bad LLM_PRICES_FILE)
            if config.llm_response_format == "llguidance":
                check_enforceable({**answer_schemas(), **review_schemas()})
        except SettingsError as exc:
            print(f"llm-worker: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        configure_logging(config)
        for actor_name in sorted(set(config.llm_priorities) - set(broker.actors)):
            logger.warning("LLM_PRIORITY_%s names no actor of this worker", actor_name.upper())
        if config.metrics_enabled:
            metrics.enable()
        choice = services().provider_choice
        services().llm  # noqa: B018 (imports the provider's SDK now; connects to nothing)
        logger.info(
            "LLM provider %s at %s (%s); text model %s, vision model %s; Core at %s",
            choice.name,
            safe_url(choice.url),
            choice.reason,
            config.llm_text_model,
            config.llm_vision_model,
            safe_url(config.core_api_url),
        )

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        threads = worker.worker_threads
        allow_open_files(2 * threads + 100)
        services().size_for(threads)
        if isinstance(broker, RecoveringRedisBroker):
            consumers = len(broker.get_declared_queues()) + len(broker.get_declared_delay_queues())
            broker.bound_pool(consumers + pool_size_for(threads), wait_seconds=POOL_WAIT_SECONDS)


def allow_open_files(wanted: int) -> int:
    """Raise the soft limit of open files to ``wanted`` (at most the hard limit);
    return the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft != resource.RLIM_INFINITY and soft < wanted:
        logger.warning(
            "only %d open files allowed (the hard limit): the worker threads may need %d",
            soft,
            wanted,
        )
    return soft
