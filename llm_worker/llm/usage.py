"""Token usage of a job, summed over all its attempts.

The running total travels in the message's options, so retries and holds
re-enqueued by the middleware carry it along.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

#: Message option holding the running total.
USAGE_OPTION = "llm_usage"


@dataclass(frozen=True)
class Usage:
    """Tokens sent and received, the number of LLM calls made, and which model
    gave the last answer (``served_by``: ``primary`` or ``fallback``)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 0
    model: str | None = None
    served_by: str | None = None

    def plus(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        *,
        model: str | None = None,
        served_by: str | None = None,
    ) -> Usage:
        """This usage with one more call added (answered by ``model``, if given)."""
        return Usage(
            self.prompt_tokens + prompt_tokens,
            self.completion_tokens + completion_tokens,
            self.attempts + 1,
            model or self.model,
            served_by or self.served_by,
        )

    def as_dict(self) -> dict[str, Any]:
        """The JSON form sent to Core (``model`` and ``served_by`` once a model answered)."""
        return {name: value for name, value in asdict(self).items() if value is not None}

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Usage:
        """The running total stored in a message's options (zero when absent)."""
        raw = options.get(USAGE_OPTION)
        if not isinstance(raw, dict):
            return cls()
        try:
            return cls(
                int(raw.get("prompt_tokens", 0)),
                int(raw.get("completion_tokens", 0)),
                int(raw.get("attempts", 0)),
                str(raw["model"]) if raw.get("model") else None,
                str(raw["served_by"]) if raw.get("served_by") else None,
            )
        except (TypeError, ValueError):
            return cls()

    def store(self, options: dict[str, Any]) -> None:
        """Write this total into a message's options."""
        options[USAGE_OPTION] = self.as_dict()
