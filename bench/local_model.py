"""The real-model scenario: the bundled default model served by llama.cpp (xllamacpp)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from actors.intent import IntentResult
from console.local_llm import DEFAULT_MODEL, start_local_llm
from llm_worker.errors import CommandError, InvalidLLMResponse
from llm_worker.jobs.schemas import response_schema
from llm_worker.llm.json_extract import parse_answer
from llm_worker.llm.providers import OpenAICompatibleProvider, Prompt, Turn
from llm_worker.prompts import render as prompts

MESSAGES = [
    "remind me to call mum at 6",
    "buy milk and eggs",
    "where did I put the passport?",
    "the wifi password is hunter2",
    "dentist next tuesday at 9",
    "hmm",
    "finish the quarterly report by friday",
    "what was the name of that restaurant?",
    "my bike is in the garage",
    "water the plants every morning",
    "call the plumber",
    "what did Anna say about the trip?",
]


def _valid_share(provider: OpenAICompatibleProvider, texts: list[str]) -> tuple[float, float]:
    schema = response_schema(IntentResult)
    system = prompts.system_prompt(prompts.INTENT, schema)
    valid = 0
    started = time.monotonic()
    for text in texts:
        prompt = Prompt(system, (Turn("user", prompts.data_block({"text": text})),))
        answer = provider.complete(
            model=DEFAULT_MODEL,
            prompt=prompt,
            schema_name="IntentResult",
            schema=schema,
            max_tokens=128,
        )
        try:
            parse_answer(answer.text, IntentResult)
            valid += 1
        except InvalidLLMResponse:
            pass
    return valid / len(texts), len(texts) / (time.monotonic() - started)


def measure_local_model(logs: Path, *, prompts: int) -> dict[str, Any]:
    """Share of schema-valid first answers with and without ``response_format``, and answers/s."""
    try:
        process, base_url = start_local_llm(logs / "local-llm.log")
    except CommandError as exc:
        return {"skipped": f"skipped: {exc}"}
    try:
        texts = MESSAGES[:prompts]

        def provider(response_format: str) -> OpenAICompatibleProvider:
            return OpenAICompatibleProvider(
                base_url=base_url, api_key="none", timeout=120.0, response_format=response_format
            )

        with_schema, rate = _valid_share(provider("llguidance"), texts)
        without_schema, _ = _valid_share(provider("none"), texts)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {
        "prompts": len(texts),
        "valid_with_schema": with_schema,
        "valid_without_schema": without_schema,
        "jobs_per_second": rate,
    }
