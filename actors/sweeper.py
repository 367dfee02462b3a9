"""``sweep_expired``: the periodic expiry sweep, scheduled by periodiq."""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from periodiq import cron

from llm_worker.jobs.kind import actor_job_kind
from llm_worker.jobs.sweep import sweep_redis_queues
from llm_worker.services import services
from llm_worker.settings import broker_settings

from .broker import broker

logger = logging.getLogger(__name__)

#: The sweeper's own queue, which the circuit breaker never pauses.
SWEEP_QUEUE = "llm.sweep"


def job_queues() -> list[str]:
    """The queues of the job actors."""
    return sorted({actor.queue_name for actor in broker.actors.values() if actor_job_kind(actor)})


@dramatiq.actor(
    queue_name=SWEEP_QUEUE,
    periodic=cron(broker_settings().sweep_cron),
    max_retries=0,
    time_limit=30 * 60 * 1000,
)
def sweep_expired() -> None:
    """Expire queued jobs older than ``LLM_UNAVAILABLE_EXPIRY_SECONDS`` (every ``SWEEP_CRON``).

    With RabbitMQ the queues cannot be scanned: expired jobs are expired when
    a worker picks them up instead.
    """
    if not isinstance(broker, RedisBroker):
        logger.info("sweep skipped: with RabbitMQ, jobs are expired when picked up")
        return
    report = sweep_redis_queues(services(), broker, job_queues())
    logger.info(
        "sweep done: scanned=%d expired=%d already_expired=%d unreadable=%d",
        report.scanned,
        report.expired,
        report.already_expired,
        report.unreadable,
    )
