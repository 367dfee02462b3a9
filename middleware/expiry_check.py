"""Expire, instead of running, a job picked up after its expiry age."""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.broker import MessageProxy

from llm_worker.expiry import expiry_error, is_expired, message_age
from llm_worker.services import services

from .base import JobMiddleware

logger = logging.getLogger(__name__)


class ExpiryCheck(JobMiddleware):
    """Expire LLM jobs older than ``LLM_UNAVAILABLE_EXPIRY_SECONDS`` when picked up.

    Covers an LLM that comes back after a job's expiry but before the sweeper
    ran: the job is expired exactly as the sweeper would (once, with an
    ``llm_expiry`` notification) and acknowledged, so it never runs.
    """

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if self.kind_of(broker, message) is None:
            return
        svc = services()
        if not is_expired(svc, message):
            return
        self.skip_job(svc, broker, message, "expired", expiry_error(message_age(message)))
