"""Expire, instead of running, a job picked up after its expiry age."""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy

from llm_worker.errors import JobExpired
from llm_worker.fleet.expiry import expiry_error, is_expired, message_age
from llm_worker.services import services

from .base import JobMiddleware

logger = logging.getLogger(__name__)


class ExpiryCheck(JobMiddleware):
    """Expire LLM jobs older than ``LLM_UNAVAILABLE_EXPIRY_SECONDS`` when picked up.

    Covers an LLM that comes back after a job's expiry but before the sweeper
    ran: the job is expired exactly as the sweeper would (once, with an
    ``llm_expiry`` notification) and acknowledged, so it never runs.  A job that
    reaches its expiry age while it waits on its thread for LLM capacity raises
    :class:`~llm_worker.errors.JobExpired` instead of calling the LLM, and is expired
    the same way after the actor.
    """

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if self.kind_of(broker, message) is None:
            return
        svc = services()
        if not is_expired(message, svc.settings.llm_unavailable_expiry_seconds):
            return
        self.skip_job(svc, broker, message, "expired", expiry_error(message_age(message)))

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if isinstance(exception, JobExpired):  # if it cannot be told, the message stays
            svc = services()
            self.end_job(svc, broker, message, "expired", expiry_error(message_age(message)))
