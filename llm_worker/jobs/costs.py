"""What one LLM call cost, accounted where operators read it: the job's usage in its
message options (sent to Core), the Prometheus cost counter, and the hourly usage
counters in Redis (``llm-worker usage``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llm_worker.fleet.usage_counters import NO_USER, CallUsage
from llm_worker.identity import JobRef
from llm_worker.jobs.registry import job_type
from llm_worker.llm.prices import MICRO_USD_PER_USD
from llm_worker.llm.providers.base import LLMAnswer
from llm_worker.llm.usage import Usage
from llm_worker.observability import metrics

if TYPE_CHECKING:  # the context is handed in; it imports this package
    import dramatiq

    from llm_worker.services import Services


def call_cost(svc: Services, model: str, answer: LLMAnswer) -> int | None:
    """The cost of ``answer`` in micro-dollars, priced as ``model`` (the name asked for)
    or else as the name the provider answered with; ``None`` when neither has a price or
    no price table is set (``LLM_PRICES_FILE``)."""
    price = svc.prices.price(model, answer.model) if svc.prices is not None else None
    if price is None:
        return None
    return price.cost_micro_usd(
        answer.prompt_tokens, answer.completion_tokens, answer.cached_tokens
    )


def call_user(message: dramatiq.Message[object]) -> str:
    """The user a job message's call serves, as the usage counters name it: the job's
    ``user_id``, or :data:`~llm_worker.fleet.usage_counters.NO_USER` for a message that is
    not a job's (a review turn) or names no usable user."""
    if job_type(message.actor_name) is None:
        return NO_USER
    user_id = JobRef.from_message(message).user_id
    return NO_USER if user_id is None else str(user_id)


def account_call(
    svc: Services,
    message: dramatiq.Message[object] | None,
    *,
    provider: str,
    model: str,
    answer: LLMAnswer,
    served_by: str,
) -> None:
    """Account one successful call: count its cost (or its tokens as unpriced) in
    Prometheus, and for a job's ``message`` add it to the usage in the message's options
    (summed over every attempt, sent to Core) and to the hourly usage counters.

    Parameters:
      provider: the provider's name (a metrics label).
      model: the model asked (the fallback's name when the fallback served).
      served_by: ``primary`` or ``fallback``.
    """
    cost = call_cost(svc, model, answer)
    tokens = answer.prompt_tokens + answer.completion_tokens
    metrics.count_cost(
        provider=provider,
        model=model,
        actor=message.actor_name if message is not None else "?",
        usd=None if cost is None else cost / MICRO_USD_PER_USD,
        tokens=tokens,
    )
    if message is None:  # the eval: no job, no Core, no counters
        return
    Usage.from_options(message.options).plus(
        answer.prompt_tokens,
        answer.completion_tokens,
        model=model,
        served_by=served_by,
        cached_tokens=answer.cached_tokens,
        cost_micro_usd=cost,
    ).store(message.options)
    svc.usage_counters.record(
        CallUsage(
            user=call_user(message),
            job_type=message.actor_name,
            model=model,
            tokens=tokens,
            cost_micro_usd=cost,
        )
    )
