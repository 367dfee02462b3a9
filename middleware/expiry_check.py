"""Expire, instead of running, a job picked up after its expiry age."""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware, SkipMessage

from llm_worker.expiry import claim_and_expire, is_expired
from llm_worker.job_outcome import note_outcome
from llm_worker.outcomes import job_kind_of
from llm_worker.services import services

logger = logging.getLogger(__name__)


class ExpiryCheck(Middleware):
    """Expire LLM jobs older than ``LLM_UNAVAILABLE_EXPIRY_SECONDS`` when picked up.

    Covers an LLM that comes back after a job's expiry but before the sweeper
    ran: the job is expired exactly as the sweeper would (once, with an
    ``llm_expiry`` notification) and acknowledged, so it never runs.
    """

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        kind = job_kind_of(broker, message)
        if kind is None:
            return
        svc = services()
        if not is_expired(svc, message):
            return
        note_outcome("expired")
        claim_and_expire(svc, message, kind)  # if it cannot be told, the message stays queued
        raise SkipMessage("expired")
