"""Fail jobs whose arguments do not fit, before anything else runs."""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware, SkipMessage

from llm_worker.arguments import parse_arguments
from llm_worker.errors import InvalidPayload
from llm_worker.outcomes import AnyMessage, JobRef, report_failure
from llm_worker.services import services

logger = logging.getLogger(__name__)


def payload_model_of(broker: dramatiq.Broker, message: AnyMessage) -> Any:
    """The actor's ``payload_model`` option, or ``None`` for actors that are not jobs."""
    actor = broker.get_actor(message.actor_name)
    return actor.options.get("payload_model")


class JobArgumentsCheck(Middleware):
    """Validate ``(job_id, user_id, payload)`` before a job actor runs.

    A job whose arguments are missing, unknown or of the wrong type is failed
    at once: Core gets ``status: failed`` with an error naming the field, the
    user an ``llm_failure`` notification, and the message goes to the
    dead-letter queue.  Nothing is retried and no LLM call is made.

    Actor option:
      payload_model: the pydantic model of the actor's payload; only actors
        with this option are checked.
    """

    actor_options = {"payload_model"}

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        model = payload_model_of(broker, message)
        if model is None:
            return
        try:
            parse_arguments(message.args, message.kwargs, model)
        except InvalidPayload as exc:
            message.fail()
            try:
                report_failure(services(), JobRef.from_message(message), str(exc), attempts=0)
            except Exception:
                logger.exception("could not report the invalid job %s", message.message_id)
            raise SkipMessage(str(exc)) from None
