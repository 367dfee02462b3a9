"""JobRetries: every error it does not leave to another middleware ends with a report."""

from __future__ import annotations

from typing import Any

import dramatiq

import actors
from actors.intent import IntentPayload
from llm_worker.errors import LLMError
from llm_worker.jobs.kind import CoreJob
from tests.support import dead_letters, drain, notifications

QUEUE = "test.llm_error"


class LLMGaveUp(LLMError):
    """An LLMError subclass no middleware was written for."""


def _unowned_llm_error(job_id: Any, user_id: Any, payload: Any) -> None:
    raise LLMGaveUp("the model gave up")


if "unowned_llm_error" not in actors.broker.actors:
    dramatiq.actor(
        _unowned_llm_error,
        actor_name="unowned_llm_error",
        queue_name=QUEUE,
        job_kind=CoreJob(IntentPayload),
        throws=(LLMError,),
        max_age_seconds=0,
    )


def test_an_llm_error_of_an_unknown_kind_is_retried_then_reported(
    env, worker, fake_core, redis_client
):
    env(JOB_MAX_RETRIES=2)
    message = actors.broker.get_actor("unowned_llm_error").send(61, 42, {"text": "x"})
    drain(worker, QUEUE)

    [update] = fake_core.job_updates(61)
    assert update["status"] == "failed"
    assert update["error"] == "the model gave up"
    assert update["usage"]["attempts"] == 0
    [note] = notifications(redis_client)
    assert note["message_type"] == "llm_failure"
    assert dead_letters(redis_client, QUEUE) == [message.message_id]
