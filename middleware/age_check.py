"""Skip jobs that were already stale when first picked up."""

from __future__ import annotations

import logging
import time

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware, SkipMessage

from llm_worker import message_options
from llm_worker.expiry import message_age
from llm_worker.job_outcome import note_outcome
from llm_worker.outcomes import job_kind_of
from llm_worker.services import services

from .circuit_breaker import breaker_store

logger = logging.getLogger(__name__)


class MessageAgeCheck(Middleware):
    """Skip a job older than ``MESSAGE_MAX_AGE_SECONDS`` at its first pick-up.

    The age is the time since enqueue minus the time the circuit breaker was
    open meanwhile: waiting for an unavailable LLM never makes a job stale.
    Retries and held-back jobs re-enqueued by this service's middleware are
    never checked.  A skipped job gets ``status: skipped`` in Core with the
    reason and no notification; no LLM call is made.

    Actor and message option:
      max_age_seconds: overrides ``MESSAGE_MAX_AGE_SECONDS`` for one actor, or
        for one message sent with ``send_with_options`` (``0`` disables the check).
    """

    actor_options = {"max_age_seconds"}

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        kind = job_kind_of(broker, message)
        if kind is None or message_options.was_requeued(message.options):
            return
        svc = services()
        actor = broker.get_actor(message.actor_name)
        default = actor.options.get("max_age_seconds", svc.settings.message_max_age_seconds)
        max_age = float(message.options.get("max_age_seconds", default))
        now = time.time()
        age = message_age(message, now=now)
        if not max_age or age <= max_age:
            return
        waited = age - breaker_store(svc).outage_seconds(now - age, now=now)
        if waited <= max_age:
            return
        error = f"stale: job was {waited:.0f}s old when picked up (limit {max_age:.0f}s)"
        note_outcome("skipped", error)
        kind.skipped(svc, message, error)  # if the report cannot be stored, the message stays
        raise SkipMessage(error)
