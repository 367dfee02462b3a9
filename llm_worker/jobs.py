"""What every job actor does: validate, ask the model, persist, notify."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from dramatiq.middleware import CurrentMessage

from . import keys, message_options, metrics, prompts
from .arguments import P, parse_arguments
from .cooldown import start_cooldown
from .errors import (
    FallbackUnavailable,
    InvalidLLMResponse,
    LLMRateLimited,
    LLMRequestRejected,
    LLMUnavailable,
)
from .images import StoredImage
from .job_lease import LEASE_MARGIN_SECONDS, job_lease
from .json_extract import parse_answer
from .providers.base import LLMAnswer, Prompt, Turn
from .schemas import Result, response_schema
from .services import Services, services
from .tokens import fit_prompt
from .usage import USAGE_OPTION, Usage

logger = logging.getLogger("llm_worker.jobs")

R = TypeVar("R", bound=Result)


@dataclass(frozen=True)
class Notification:
    """One notification to publish when a job completes."""

    message_type: str
    content: dict[str, Any]


def retry_feedback() -> list[Turn]:
    """The turns that tell the model what was wrong with its last answer, on a retry."""
    message = CurrentMessage.get_current_message()
    feedback = message.options.get(message_options.FEEDBACK) if message is not None else None
    if not isinstance(feedback, dict):
        return []
    problem = prompts.RETRY_FEEDBACK.format(problem=feedback.get("problem", ""))
    return [
        Turn("assistant", str(feedback.get("answer", "")), kind="feedback"),
        Turn("user", problem, kind="feedback"),
    ]


def current_usage() -> Usage:
    """The token usage recorded so far on the message being processed."""
    message = CurrentMessage.get_current_message()
    return Usage.from_options(message.options) if message is not None else Usage()


def request_outcome(exc: Exception) -> str:
    """The metrics label of a failed LLM request."""
    if isinstance(exc, LLMRateLimited):
        return "rate_limited"
    if isinstance(exc, LLMUnavailable):
        return "unavailable"
    if isinstance(exc, LLMRequestRejected):
        return "rejected"
    if isinstance(exc, InvalidLLMResponse):
        return "invalid"
    return "error"


def call_llm(
    svc: Services,
    *,
    model: str,
    prompt: Prompt,
    schema_name: str,
    schema: dict[str, Any],
    max_tokens: int | None = None,
) -> LLMAnswer:
    """Fit ``prompt`` into the token budget, wait for fleet capacity, call the model,
    and record the usage.

    ``max_tokens`` is the answer's budget, capped by ``LLM_MAX_OUTPUT_TOKENS``.

    While the primary LLM's breaker is open and a fallback is configured, the
    call goes to the fallback (with its model names).  A 429 starts the fleet's
    cooldown.  The usage is added to the current message's options, so it is
    summed over every attempt of the job.

    Raises:
      PromptTooLarge, LLMAtCapacity, LLMUnavailable (LLMRateLimited,
      FallbackUnavailable), LLMRequestRejected, InvalidLLMResponse.
    """
    config = svc.settings
    answer_tokens = min(max_tokens or config.llm_max_output_tokens, config.llm_max_output_tokens)
    fallback = svc.fallback_active()
    provider = svc.fallback_llm if fallback else svc.llm
    assert provider is not None
    if fallback:
        model = svc.fallback_model(model)
    fitted, size = fit_prompt(
        prompt, config.prompt_token_budget, lambda p: svc.count_tokens(model, p, provider)
    )
    message = CurrentMessage.get_current_message()
    actor = message.actor_name if message is not None else "?"
    with svc.capacity.request(priority=config.llm_priority(actor), tokens=size) as lease:
        started = time.monotonic()
        try:
            answer = provider.complete(
                model=model,
                prompt=fitted,
                schema_name=schema_name,
                schema=schema,
                max_tokens=answer_tokens,
            )
        except Exception as exc:
            metrics.observe_request(
                provider=provider.name,
                model=model,
                actor=actor,
                outcome=request_outcome(exc),
                seconds=time.monotonic() - started,
            )
            if isinstance(exc, LLMRateLimited):
                start_cooldown(svc, exc)
            elif fallback and isinstance(exc, LLMUnavailable):
                raise FallbackUnavailable(
                    f"fallback LLM: {exc}", retry_after=exc.retry_after, status=exc.status
                ) from exc
            raise
        lease.used = answer.prompt_tokens + answer.completion_tokens
    metrics.observe_request(
        provider=provider.name,
        model=model,
        actor=actor,
        outcome="ok",
        seconds=time.monotonic() - started,
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
    )
    if message is not None:
        usage = Usage.from_options(message.options)
        served_by = "fallback" if fallback else "primary"
        usage.plus(
            answer.prompt_tokens, answer.completion_tokens, model=model, served_by=served_by
        ).store(message.options)
    return answer


@dataclass(frozen=True)
class LLMRequest:
    """One call to the model: what :func:`call_llm` is given."""

    model: str
    prompt: Prompt
    schema_name: str
    schema: dict[str, Any]
    max_tokens: int | None = None

    def call(self, svc: Services) -> LLMAnswer:
        """Make the call (see :func:`call_llm`)."""
        return call_llm(
            svc,
            model=self.model,
            prompt=self.prompt,
            schema_name=self.schema_name,
            schema=self.schema,
            max_tokens=self.max_tokens,
        )


@dataclass
class Job(Generic[P]):
    """One running life-organiser job: its validated arguments and the clients it uses."""

    job_type: str
    job_id: str | int
    user_id: int
    payload: P
    services: Services

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

    def request(
        self, result_model: type[Result], data: dict[str, Any], image: StoredImage | None = None
    ) -> LLMRequest:
        """The call that asks the model for one ``result_model`` object about ``data``.

        The task text, the labelled examples (shown as earlier turns) and the
        answer's budget come from the prompt profile's entry for this job type.
        On a retry after an invalid answer, the conversation includes that
        answer and what was wrong with it.
        """
        config = self.services.settings
        schema = response_schema(result_model)
        spec = self.services.prompt_profile.job(self.job_type)
        system = prompts.system_prompt(spec.task, schema if spec.schema_in_prompt else None)
        in_turns = spec.examples_as == "turns"
        if spec.examples and not in_turns:
            system = f"{system}\n\n{prompts.examples_text(spec.examples)}"
        prompt = Prompt(
            system=system,
            turns=(
                *(prompts.example_turns(spec.examples) if in_turns else ()),
                Turn("user", prompts.data_block(data), image=image),
                *retry_feedback(),
            ),
        )
        return LLMRequest(
            model=config.llm_vision_model if image else config.llm_text_model,
            prompt=prompt,
            schema_name=result_model.__name__,
            schema=schema,
            max_tokens=spec.max_tokens,
        )

    def ask(
        self,
        result_model: type[R],
        *,
        data: dict[str, Any],
        image: StoredImage | None = None,
    ) -> R:
        """Ask the model for one ``result_model`` object about ``data`` (see :meth:`request`).

        A valid result stored by an earlier attempt or another message of the same
        job (job type and ``job_id``, for ``JOB_RESULT_TTL_SECONDS``) is reused; the
        call itself is made under the job's lease (:mod:`llm_worker.job_lease`).

        Raises:
          PromptTooLarge, LLMUnavailable, LLMRequestRejected, InvalidLLMResponse,
          JobInProgress.
        """
        message = CurrentMessage.get_current_message()
        if message is None:  # outside a worker (the eval command): nothing stored
            return self._call(result_model, data, image)
        config = self.services.settings
        prefix = config.key_prefix
        with job_lease(
            self.services.redis,
            keys.job_lease(prefix, self.job_type, self.job_id),
            keys.job_result(prefix, self.job_type, result_model.__name__, self.job_id),
            message.message_id,
            ttl_seconds=config.llm_timeout_seconds + LEASE_MARGIN_SECONDS,
        ) as lease:
            if lease.stored is not None:
                return self._reuse(result_model, lease.stored, message.options)
            parsed = self._call(result_model, data, image)
            stored = {"result": parsed.model_dump(mode="json"), "usage": current_usage().as_dict()}
            lease.store(json.dumps(stored), config.job_result_ttl_seconds)
            return parsed

    def _call(self, result_model: type[R], data: dict[str, Any], image: StoredImage | None) -> R:
        answer = self.request(result_model, data, image).call(self.services)
        parsed = parse_answer(answer.text, result_model)
        assert isinstance(parsed, result_model)
        return parsed

    def _reuse(self, result_model: type[R], raw: bytes, options: dict[str, Any]) -> R:
        """The valid result an earlier attempt or message of this job stored.

        The usage it cost becomes this message's, when this message has none yet,
        so Core gets the same final state from every message of the job.
        """
        stored = json.loads(raw)
        logger.info("reusing the stored LLM result of job %s", self.job_id)
        if Usage.from_options(options).attempts == 0:
            Usage.from_options({USAGE_OPTION: stored.get("usage")}).store(options)
        return result_model.model_validate(stored["result"])

    def complete(self, result: dict[str, Any], notifications: Iterable[Notification]) -> None:
        """Store the result in Core as completed, then publish the notifications and
        remember that the job finished, in one Redis round trip."""
        self.services.core.update_job(
            self.job_id, "completed", result=result, usage=current_usage()
        )
        notifier = self.services.notifier
        publications = [
            notifier.prepare(
                user_id=self.user_id,
                job_id=self.job_id,
                message_type=notification.message_type,
                content=notification.content,
                job_type=self.job_type,
                discriminator=index,
            )
            for index, notification in enumerate(notifications)
        ]
        message = CurrentMessage.get_current_message()
        if message is None:
            for publication in publications:
                notifier.publish_prepared(publication)
            return
        config = self.services.settings
        notifier.publish_and_mark(
            publications,
            key=keys.finished(config.key_prefix, message.message_id),
            value="completed",
            ttl_seconds=config.notify_dedupe_seconds,
        )
