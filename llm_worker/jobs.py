"""What every job actor does: validate, ask the model, persist, notify."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from dramatiq.middleware import CurrentMessage

from . import message_options, prompts
from .arguments import P, parse_arguments
from .json_extract import parse_answer
from .schemas import Result, response_schema
from .services import Services, services

logger = logging.getLogger("llm_worker.jobs")

R = TypeVar("R", bound=Result)


@dataclass(frozen=True)
class Notification:
    """One notification to publish when a job completes."""

    message_type: str
    content: dict[str, Any]


def _retry_feedback() -> list[dict[str, Any]]:
    message = CurrentMessage.get_current_message()
    feedback = message.options.get(message_options.FEEDBACK) if message is not None else None
    if not isinstance(feedback, dict):
        return []
    return [
        {"role": "assistant", "content": str(feedback.get("answer", ""))},
        {
            "role": "user",
            "content": prompts.RETRY_FEEDBACK.format(problem=feedback.get("problem", "")),
        },
    ]


@dataclass
class Job(Generic[P]):
    """One running job: its validated arguments and the clients it uses."""

    job_type: str
    job_id: str | int
    user_id: int
    payload: P
    services: Services
    prompt_tokens: int = field(default=0)
    completion_tokens: int = field(default=0)

    @classmethod
    def start(
        cls, job_type: str, payload_model: type[P], args: Sequence[Any], kwargs: dict[str, Any]
    ) -> Job[P]:
        """Validate the actor's arguments and bind the process's clients.

        Raises:
          InvalidPayload: naming the offending argument or field.
        """
        parsed = parse_arguments(args, kwargs, payload_model)
        return cls(job_type, parsed.job_id, parsed.user_id, parsed.payload, services())

    def ask(
        self,
        result_model: type[R],
        *,
        task: str,
        data: dict[str, Any],
        image_url: str | None = None,
    ) -> R:
        """Ask the model for one ``result_model`` object about ``data``.

        On a retry after an invalid answer, the conversation includes that
        answer and what was wrong with it.

        Raises:
          LLMUnavailable, LLMRequestRejected, InvalidLLMResponse.
        """
        settings = self.services.settings
        schema = response_schema(result_model)
        user_text = prompts.data_block(data)
        content: Any = user_text
        if image_url is not None:
            content = [
                {"type": "text", "text": user_text},
                {"type": "image_url", "image_url": {"url": image_url}},
            ]
        messages = [
            {"role": "system", "content": prompts.system_prompt(task, schema)},
            {"role": "user", "content": content},
            *_retry_feedback(),
        ]
        answer = self.services.llm.complete(
            model=settings.llm_vision_model if image_url else settings.llm_text_model,
            messages=messages,
            schema_name=result_model.__name__,
            schema=schema,
        )
        self.prompt_tokens += answer.prompt_tokens
        self.completion_tokens += answer.completion_tokens
        parsed = parse_answer(answer.text, result_model)
        assert isinstance(parsed, result_model)
        return parsed

    def complete(self, result: dict[str, Any], notifications: Iterable[Notification]) -> None:
        """Store the result in Core as completed, then publish the notifications."""
        self.services.core.update_job(self.job_id, "completed", result=result)
        for notification in notifications:
            self.services.notifier.publish(
                user_id=self.user_id,
                job_id=self.job_id,
                message_type=notification.message_type,
                content=notification.content,
            )
        logger.info(
            "job completed: actor=%s job_id=%s user_id=%s tokens=%d+%d",
            self.job_type,
            self.job_id,
            self.user_id,
            self.prompt_tokens,
            self.completion_tokens,
        )
