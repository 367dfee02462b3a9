"""Calling the LLM for a job or a review turn: the prompt fitted, capacity waited for,
the call made and measured, its usage kept on the job's message."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dramatiq

from llm_worker.errors import (
    FallbackUnavailable,
    InvalidLLMResponse,
    JobExpired,
    LLMRateLimited,
    LLMRequestRejected,
    LLMUnavailable,
)
from llm_worker.fleet.cooldown import start_cooldown
from llm_worker.fleet.expiry import is_expired, message_age
from llm_worker.jobs import retry as message_options
from llm_worker.jobs.costs import account_call
from llm_worker.llm.call_trace import LLMCallTrace
from llm_worker.llm.providers.base import LLMAnswer, Prompt, Turn
from llm_worker.llm.tokens import fit_prompt
from llm_worker.llm.usage import Usage
from llm_worker.observability import metrics
from llm_worker.prompts import render as prompts

if TYPE_CHECKING:  # the context is handed in; it imports this package
    from llm_worker.services import Services

#: The message of the job being processed, or ``None`` outside a worker (the eval command).
JobMessage = dramatiq.Message[Any] | None


def retry_feedback(message: JobMessage) -> list[Turn]:
    """The turns that tell the model what was wrong with its last answer, on a retry of
    ``message`` after an invalid answer (none otherwise)."""
    feedback = message.options.get(message_options.FEEDBACK) if message is not None else None
    if not isinstance(feedback, dict):
        return []
    problem = prompts.RETRY_FEEDBACK.format(problem=feedback.get("problem", ""))
    return [
        Turn("assistant", str(feedback.get("answer", "")), kind="feedback"),
        Turn("user", problem, kind="feedback"),
    ]


def message_usage(message: JobMessage) -> Usage:
    """The token usage recorded so far on ``message`` (none outside a worker)."""
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
    priority: int = 0,
    share: str = "",
    user: str = "",
    message: JobMessage = None,
    before_call: Callable[[], None] | None = None,
) -> LLMAnswer:
    """Fit ``prompt`` into the token budget, wait for fleet capacity, call the model,
    and record the usage.

    ``before_call`` runs once capacity is held, just before the model is asked (the job
    checks there that its lease is still its own); what it raises ends the call.

    ``max_tokens`` is the answer's budget, capped by ``LLM_MAX_OUTPUT_TOKENS``;
    ``priority`` orders the call among those waiting for capacity (lower runs first),
    ``share`` says who it counts for in the fair order (its user, or its review request;
    ``""``: nobody) and ``user`` whose daily token budget it is charged to.

    While the primary LLM's breaker is open and a fallback is configured, the
    call goes to the fallback (with its model names).  A 429 starts the fleet's
    cooldown.  The usage and cost are added to ``message``'s options (the job's message:
    its metrics labels come from it), so they are summed over every attempt of the job,
    and to the hourly usage counters (:func:`~llm_worker.jobs.costs.account_call`).

    A job that reached its expiry age while it waited for capacity on its thread is not
    sent to the model: :class:`~llm_worker.errors.JobExpired` (``ExpiryCheck`` expires it).

    Raises:
      PromptTooLarge, LLMAtCapacity, LLMUnavailable (LLMRateLimited,
      FallbackUnavailable), LLMRequestRejected, InvalidLLMResponse, JobExpired.
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
    actor = message.actor_name if message is not None else "?"
    waiting = time.monotonic()
    with svc.capacity.request(priority=priority, tokens=size, share=share, user=user) as lease:
        if message is not None and is_expired(message, config.llm_unavailable_expiry_seconds):
            age = message_age(message)
            raise JobExpired(f"expired while it waited for LLM capacity ({age:.0f}s old)")
        if before_call is not None:
            before_call()
        started = time.monotonic()
        call = LLMCallTrace(provider.name, model, answer_tokens, fallback, started - waiting)
        try:
            with call.span(fitted):
                answer = provider.complete(
                    model=model,
                    prompt=fitted,
                    schema_name=schema_name,
                    schema=schema,
                    max_tokens=answer_tokens,
                )
                call.answered(answer)
        except Exception as exc:
            call.failed(exc)
            metrics.observe_request(
                provider=provider.name,
                model=model,
                actor=actor,
                outcome=request_outcome(exc),
                seconds=time.monotonic() - started,
            )
            if isinstance(exc, LLMRateLimited):
                start_cooldown(svc.settings, svc.capacity, exc)
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
    served_by = "fallback" if fallback else "primary"
    account_call(
        svc, message, provider=provider.name, model=model, answer=answer, served_by=served_by
    )
    return answer


@dataclass(frozen=True)
class LLMRequest:
    """One call to the model: what :func:`call_llm` is given."""

    model: str
    prompt: Prompt
    schema_name: str
    schema: dict[str, Any]
    max_tokens: int | None = None
    #: Its priority when capacity is short (lower runs first).
    priority: int = 0
    #: Who it counts for when capacity is shared fairly (``""``: nobody).
    share: str = ""
    #: Whose daily token budget it is charged to (``""``: nobody's).
    user: str = ""

    def call(
        self,
        svc: Services,
        message: JobMessage = None,
        before_call: Callable[[], None] | None = None,
    ) -> LLMAnswer:
        """Make the call for the job of ``message`` (see :func:`call_llm`)."""
        return call_llm(
            svc,
            model=self.model,
            prompt=self.prompt,
            schema_name=self.schema_name,
            schema=self.schema,
            max_tokens=self.max_tokens,
            priority=self.priority,
            share=self.share,
            user=self.user,
            message=message,
            before_call=before_call,
        )
