"""Refuse malformed jobs at send time, and fail them before anything else runs."""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import MiddlewareError

from llm_worker.errors import InvalidPayload, SettingsError
from llm_worker.jobs import retry as message_options
from llm_worker.jobs.kind import check_job
from llm_worker.services import services
from llm_worker.settings import send_check_settings

from .base import JobMiddleware

logger = logging.getLogger(__name__)


class InvalidJob(MiddlewareError, ValueError):
    """Raised to a producer by ``actor.send`` for a malformed job (nothing is enqueued)."""


class SendCheckFailed(MiddlewareError, RuntimeError):
    """Raised to a producer by ``actor.send`` when the job could not be checked (an invalid
    ``JOB_MAX_PAYLOAD_BYTES``, arguments that are not JSON): nothing is enqueued."""


class JobArgumentsCheck(JobMiddleware):
    """Validate a job's arguments (and size, ``JOB_MAX_PAYLOAD_BYTES``) twice.

    - At send time, in the producer: ``actor.send`` raises :class:`InvalidJob`
      at once and nothing is enqueued.  The check reads only
      :class:`~llm_worker.settings.SendCheckSettings`; when it cannot run,
      ``actor.send`` raises :class:`SendCheckFailed` and nothing is enqueued.
    - At pick-up, for producers that bypass it: the job is failed at once
      through its job kind (for Core jobs: ``status: failed`` with an error
      naming the field and an ``llm_failure`` notification) and the message goes
      to the dead-letter queue.  Nothing is retried and no LLM call is made.
    """

    def before_enqueue(self, broker: dramatiq.Broker, message: Any, delay: int | None) -> None:
        if message.options.get(message_options.CHECKED):
            return  # a retry, a hold or a delayed message moving on: checked when first sent
        kind = self.kind_of(broker, message)
        if kind is None:
            return
        try:
            check_job(send_check_settings(), kind, message)
        except InvalidPayload as exc:
            raise InvalidJob(f"{message.actor_name}: {exc}") from None
        except SettingsError as exc:
            raise SendCheckFailed(
                f"{message.actor_name}: not sent, the job cannot be checked: invalid setting {exc}"
            ) from None
        except Exception as exc:
            raise SendCheckFailed(
                f"{message.actor_name}: not sent, the job cannot be checked: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        message.options[message_options.CHECKED] = True

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        kind = self.kind_of(broker, message)
        if kind is None:
            return
        svc = services()
        try:
            check_job(svc.settings, kind, message)
        except InvalidPayload as exc:
            error = str(exc)
        else:
            return
        self.skip_job(svc, broker, message, "failed", error)
