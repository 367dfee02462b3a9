"""Do nothing with a redelivered job that already finished."""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import SkipMessage

from llm_worker import keys
from llm_worker.identity import message_key
from llm_worker.jobs.outcome import note_outcome
from llm_worker.services import services

from .base import JobMiddleware

logger = logging.getLogger(__name__)


class FinishedJobCheck(JobMiddleware):
    """Acknowledge, without running it, a job that already reached a terminal state.

    Dramatiq delivers at least once: a worker killed after telling Core and
    the user, but before acknowledging, gets its message delivered again.
    The terminal state is remembered per message in Redis
    (``{p}:finished:{message_id}``) once Core and the user were told, so a
    job never ends twice with different states.
    """

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if self.kind_of(broker, message) is None:
            return
        svc = services()
        raw = svc.redis.get(keys.finished(svc.settings.key_prefix, message_key(message)))
        if raw is None:
            return
        state = raw.decode()
        logger.info("job %s already %s: redelivery ignored", message.message_id, state)
        note_outcome("duplicate")
        raise SkipMessage(f"already {state}")
