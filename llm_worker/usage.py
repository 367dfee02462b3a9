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
    """Tokens sent and received, and the number of LLM calls made."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 0

    def plus(self, prompt_tokens: int, completion_tokens: int) -> Usage:
        """This usage with one more call added."""
        return Usage(
            self.prompt_tokens + prompt_tokens,
            self.completion_tokens + completion_tokens,
            self.attempts + 1,
        )

    def as_dict(self) -> dict[str, int]:
        """The JSON form sent to Core."""
        return asdict(self)

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
            )
        except (TypeError, ValueError):
            return cls()

    def store(self, options: dict[str, Any]) -> None:
        """Write this total into a message's options."""
        options[USAGE_OPTION] = self.as_dict()
