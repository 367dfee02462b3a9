"""Fail jobs whose arguments do not fit, before anything else runs."""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware, SkipMessage

from llm_worker.errors import InvalidPayload
from llm_worker.job_outcome import note_outcome
from llm_worker.outcomes import job_kind_of
from llm_worker.services import services

logger = logging.getLogger(__name__)


class JobArgumentsCheck(Middleware):
    """Validate a job's arguments before its actor runs.

    A job whose arguments are missing, unknown or of the wrong type is failed
    at once through its job kind (for Core jobs: ``status: failed`` with an
    error naming the field and an ``llm_failure`` notification), and the
    message goes to the dead-letter queue.  Nothing is retried and no LLM
    call is made.

    Actor option:
      job_kind: the actor's :class:`~llm_worker.outcomes.JobKind`; it marks
        the LLM job actors every middleware of this service acts on.
    """

    actor_options = {"job_kind"}

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        kind = job_kind_of(broker, message)
        if kind is None:
            return
        try:
            kind.validate(message.args, message.kwargs)
        except InvalidPayload as exc:
            message.fail()
            note_outcome("failed", str(exc))
            try:
                kind.failed(services(), message, str(exc), 0)
            except Exception:
                logger.exception("could not report the invalid job %s", message.message_id)
            raise SkipMessage(str(exc)) from None
