"""Token counting and fitting prompts into the context window.

Where the provider has no tokenizer reachable offline, prompts are measured
with a conservative estimate: one token per 3 bytes of UTF-8 (real
tokenizers average about 4 characters per token for English and code),
plus 4 tokens per message and 1,600 per image.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from llm_worker.errors import LLMRequestRejected
from llm_worker.llm.providers.base import IMAGE_TOKENS, Prompt, Turn

BYTES_PER_TOKEN = 3
MESSAGE_OVERHEAD_TOKENS = 4

SHORTENED_MARKER = "\n[... shortened to fit the context window: {removed} characters removed ...]"
DROPPED_MARKER = "[earlier tool result dropped to fit the context window]"

Counter = Callable[[Prompt], int]


class PromptTooLarge(LLMRequestRejected):
    """A prompt cannot be made to fit the budget without losing what must stay."""


def estimate_text_tokens(text: str) -> int:
    """Conservative token estimate of ``text``."""
    return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)


def estimate_tokens(prompt: Prompt) -> int:
    """Conservative token estimate of a whole prompt."""
    total = estimate_text_tokens(prompt.system) + MESSAGE_OVERHEAD_TOKENS
    for turn in prompt.turns:
        total += estimate_text_tokens(turn.text) + MESSAGE_OVERHEAD_TOKENS
        if turn.image is not None:
            total += IMAGE_TOKENS
    return total


def _shorten(turn: Turn, excess_tokens: int) -> Turn:
    keep = max(0, len(turn.text) - excess_tokens * 4 - 200)
    removed = len(turn.text) - keep
    return turn.with_text(turn.text[:keep] + SHORTENED_MARKER.format(removed=removed))


def fit_prompt(prompt: Prompt, budget: int, count: Counter) -> tuple[Prompt, int]:
    """Make ``prompt`` fit in ``budget`` tokens; return it with its size.

    Older ``tool_result`` turns are shortened first (with a marker saying
    so), then dropped; the system prompt, the first turn (the job's data)
    and the latest turn are never touched.

    Raises:
      PromptTooLarge: when even that does not make it fit.
    """
    size = count(prompt)
    turns = list(prompt.turns)
    candidates = [i for i, t in enumerate(turns[:-1]) if t.kind == "tool_result" and i > 0]
    for index in candidates:
        for _ in range(3):
            if size <= budget or turns[index].text == DROPPED_MARKER:
                break
            turns[index] = _shorten(turns[index], size - budget)
            size = count(replace(prompt, turns=tuple(turns)))
    for index in candidates:
        if size <= budget:
            break
        turns[index] = turns[index].with_text(DROPPED_MARKER)
        size = count(replace(prompt, turns=tuple(turns)))
    if size > budget:
        raise PromptTooLarge(f"prompt of {size} tokens does not fit the budget of {budget} tokens")
    return replace(prompt, turns=tuple(turns)), size
