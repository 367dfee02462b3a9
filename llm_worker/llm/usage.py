"""Token usage and cost of a job, summed over all its attempts.

The running total travels in the message's options, so retries and holds
re-enqueued by the middleware carry it along.  Costs are whole micro-dollars
(:mod:`llm_worker.llm.prices`), so the sums are exact.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from llm_worker.llm.prices import MICRO_USD_PER_USD

#: Message option holding the running total.
USAGE_OPTION = "llm_usage"
#: Decimals of ``cost_usd`` in the usage sent to Core (a micro-dollar).
COST_DECIMALS = 6


@dataclass(frozen=True)
class Usage:
    """Tokens sent and received, the number of LLM calls made, which model gave the last
    answer (``served_by``: ``primary`` or ``fallback``), and what the calls cost.

    ``cached_tokens`` are the prompt tokens the providers read from their prompt cache
    (part of ``prompt_tokens``).  ``cost_micro_usd`` is the cost of the ``priced_calls``;
    ``unpriced_calls`` counts the calls whose cost is unknown: their model has no price
    (or no price table is set, ``LLM_PRICES_FILE``).
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 0
    model: str | None = None
    served_by: str | None = None
    cached_tokens: int = 0
    cost_micro_usd: int = 0
    priced_calls: int = 0
    unpriced_calls: int = 0

    def plus(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        *,
        model: str | None = None,
        served_by: str | None = None,
        cached_tokens: int = 0,
        cost_micro_usd: int | None = None,
    ) -> Usage:
        """This usage with one more call added (answered by ``model``, if given).

        Parameters:
          cached_tokens: the call's prompt tokens read from the provider's cache.
          cost_micro_usd: the call's cost, ``None`` when unknown (an unpriced call).
        """
        priced = cost_micro_usd is not None
        return Usage(
            prompt_tokens=self.prompt_tokens + prompt_tokens,
            completion_tokens=self.completion_tokens + completion_tokens,
            attempts=self.attempts + 1,
            model=model or self.model,
            served_by=served_by or self.served_by,
            cached_tokens=self.cached_tokens + cached_tokens,
            cost_micro_usd=self.cost_micro_usd + (cost_micro_usd or 0),
            priced_calls=self.priced_calls + priced,
            unpriced_calls=self.unpriced_calls + (not priced),
        )

    @property
    def cost_usd(self) -> float | None:
        """The job's cost in US dollars (to the micro-dollar) when every call was priced,
        else ``None``."""
        if not self.priced_calls or self.priced_calls != self.attempts:
            return None
        return round(self.cost_micro_usd / MICRO_USD_PER_USD, COST_DECIMALS)

    def as_dict(self) -> dict[str, Any]:
        """The form kept in message options, reports and stored results (every count;
        ``model`` and ``served_by`` once a model answered)."""
        return {name: value for name, value in asdict(self).items() if value is not None}

    def core_dict(self) -> dict[str, Any]:
        """The JSON form sent to Core: tokens and calls; ``model`` and ``served_by`` once a
        model answered; ``cost_usd`` when every call was priced, ``unpriced_calls`` when
        some were not."""
        sent = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "attempts": self.attempts,
            "model": self.model,
            "served_by": self.served_by,
            "cost_usd": self.cost_usd,
            "unpriced_calls": self.unpriced_calls or None,
        }
        return {name: value for name, value in sent.items() if value is not None}

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Usage:
        """The running total stored in a message's options (zero when absent)."""
        raw = options.get(USAGE_OPTION)
        if not isinstance(raw, dict):
            return cls()
        try:
            return cls(
                prompt_tokens=int(raw.get("prompt_tokens", 0)),
                completion_tokens=int(raw.get("completion_tokens", 0)),
                attempts=int(raw.get("attempts", 0)),
                model=str(raw["model"]) if raw.get("model") else None,
                served_by=str(raw["served_by"]) if raw.get("served_by") else None,
                cached_tokens=int(raw.get("cached_tokens", 0)),
                cost_micro_usd=int(raw.get("cost_micro_usd", 0)),
                priced_calls=int(raw.get("priced_calls", 0)),
                unpriced_calls=int(raw.get("unpriced_calls", 0)),
            )
        except (TypeError, ValueError):
            return cls()

    def store(self, options: dict[str, Any]) -> None:
        """Write this total into a message's options."""
        options[USAGE_OPTION] = self.as_dict()
