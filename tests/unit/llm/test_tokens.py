"""Token estimates and fitting a prompt into its budget (older tool results give way)."""

from __future__ import annotations

import pytest

from llm_worker.errors import LLMRequestRejected
from llm_worker.llm.images import StoredImage
from llm_worker.llm.providers.base import IMAGE_TOKENS, Prompt, Turn
from llm_worker.llm.tokens import (
    DROPPED_MARKER,
    MESSAGE_OVERHEAD_TOKENS,
    PromptTooLarge,
    estimate_text_tokens,
    estimate_tokens,
    fit_prompt,
)

pytestmark = pytest.mark.unit


def test_the_estimate_is_one_token_per_three_bytes_rounded_up():
    assert [estimate_text_tokens(text) for text in ("", "a", "abc", "abcd")] == [0, 1, 1, 2]
    assert estimate_text_tokens("é" * 3) == 2  # six bytes of UTF-8


def test_a_prompt_counts_each_message_and_each_image():
    image = StoredImage("image/png", b"\x89PNG")
    prompt = Prompt("abc", (Turn("user", "abcdef"), Turn("user", "", image=image)))

    assert estimate_tokens(prompt) == 1 + 2 + 0 + 3 * MESSAGE_OVERHEAD_TOKENS + IMAGE_TOKENS


def _conversation(*results: str) -> Prompt:
    turns = [Turn("user", "the job's data")]
    for text in results:
        turns += [Turn("assistant", "a tool call", kind="tool_call")]
        turns += [Turn("user", text, kind="tool_result")]
    return Prompt("system rules", (*turns, Turn("user", "the latest question")))


def test_a_prompt_within_budget_is_unchanged():
    prompt = _conversation("short result")

    fitted, size = fit_prompt(prompt, 10_000, estimate_tokens)

    assert (fitted, size) == (prompt, estimate_tokens(prompt))


def test_the_oldest_tool_result_is_shortened_first_with_a_marker():
    prompt = _conversation("x" * 3000, "y" * 300)
    budget = estimate_tokens(prompt) - 200

    fitted, size = fit_prompt(prompt, budget, estimate_tokens)

    assert size == estimate_tokens(fitted) <= budget
    old, newer = fitted.turns[2], fitted.turns[4]
    assert old.text.startswith("x") and "shortened to fit the context window" in old.text
    assert newer.text == "y" * 300


def test_tool_results_are_dropped_when_shortening_is_not_enough():
    prompt = _conversation("x" * 300, "y" * 300)
    dropped = _conversation(DROPPED_MARKER, DROPPED_MARKER)
    budget = estimate_tokens(dropped)

    fitted, size = fit_prompt(prompt, budget, estimate_tokens)

    assert (fitted, size) == (dropped, budget)


def test_the_system_prompt_the_data_and_the_latest_turn_are_never_touched():
    prompt = _conversation("x" * 3000)
    budget = estimate_tokens(Prompt(prompt.system, (prompt.turns[0], prompt.turns[-1]))) + 5

    with pytest.raises(PromptTooLarge, match=f"does not fit the budget of {budget} ") as caught:
        fit_prompt(prompt, budget, estimate_tokens)
    assert isinstance(caught.value, LLMRequestRejected)  # the job fails, no retry


def test_the_counter_given_decides():
    prompt = _conversation("x" * 30)

    fitted, size = fit_prompt(prompt, 100, lambda p: 100)

    assert (fitted, size) == (prompt, 100)
    with pytest.raises(PromptTooLarge):
        fit_prompt(prompt, 99, lambda p: 100)
