"""Skip jobs that were already stale when first picked up."""

from __future__ import annotations

import logging
import time

import dramatiq
from dramatiq.broker import MessageProxy

from llm_worker.fleet.expiry import message_age
from llm_worker.fleet.staleness import unavailable_seconds
from llm_worker.jobs import retry as message_options
from llm_worker.services import services

from .base import JobMiddleware

logger = logging.getLogger(__name__)


class MessageAgeCheck(JobMiddleware):
    """Skip a job older than ``MESSAGE_MAX_AGE_SECONDS`` at its first pick-up.

    The age is the time since enqueue minus the time the LLM could not take jobs
    meanwhile (the circuit breaker open, or the fleet waiting out a 429's cooldown):
    waiting for an unavailable LLM never makes a job stale.
    Retries and held-back jobs re-enqueued by this service's middleware are
    never checked.  A skipped job gets ``status: skipped`` in Core with the
    reason and no notification; no LLM call is made.

    Actor and message option:
      max_age_seconds: overrides the default for one actor, or for one message
        sent with ``send_with_options`` (``0`` disables the check).

    Parameters:
      max_age_seconds: the default limit in seconds; ``None`` (the default) reads
        ``MESSAGE_MAX_AGE_SECONDS`` from the worker's settings.
    """

    def __init__(self, *, max_age_seconds: float | None = None) -> None:
        self.max_age_seconds = max_age_seconds

    @property
    def actor_options(self) -> set[str]:
        """``job_kind`` and ``max_age_seconds``."""
        return super().actor_options | {"max_age_seconds"}

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if self.kind_of(broker, message) is None or message_options.was_requeued(message.options):
            return
        svc = services()
        default = self.max_age_seconds
        if default is None:
            default = svc.settings.message_max_age_seconds
        max_age = float(self.option(broker, message, "max_age_seconds", default))
        now = time.time()
        age = message_age(message, now=now)
        if not max_age or age <= max_age:
            return
        waited = age - unavailable_seconds(svc.breaker, svc.capacity.store, now - age, now=now)
        if waited <= max_age:
            return
        error = f"stale: job was {waited:.0f}s old when picked up (limit {max_age:.0f}s)"
        self.skip_job(svc, broker, message, "skipped", error)
