"""Defensive extraction of one JSON object from an LLM's answer text."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ValidationError

from llm_worker.errors import InvalidLLMResponse

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
#: How much of a bad answer is kept for the retry feedback.
ANSWER_EXCERPT_CHARS = 2000


def _candidates(text: str) -> list[str]:
    stripped = text.strip()
    found = [stripped]
    found.extend(match.strip() for match in _FENCE.findall(text))
    start = stripped.find("{")
    if start != -1:
        found.append(stripped[start:])
    return found


def extract_json_object(text: str) -> dict[str, Any]:
    """Return the first JSON object found in ``text``.

    Accepts a bare object, one inside a Markdown code fence, or one surrounded
    by prose.

    Raises:
      InvalidLLMResponse: when no JSON object can be found.
    """
    decoder = json.JSONDecoder()
    for candidate in _candidates(text):
        try:
            value, _ = decoder.raw_decode(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    excerpt = text[:ANSWER_EXCERPT_CHARS]
    if not text.strip():
        raise InvalidLLMResponse("the answer was empty", answer=excerpt)
    raise InvalidLLMResponse("the answer contained no JSON object", answer=excerpt)


def parse_answer(text: str, model: type[BaseModel]) -> BaseModel:
    """Extract the JSON object from ``text`` and validate it against ``model``.

    Raises:
      InvalidLLMResponse: carrying the validation message and the answer.
    """
    value = extract_json_object(text)
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()[:5]
        )
        raise InvalidLLMResponse(
            f"the JSON did not match the schema: {problems}",
            answer=text[:ANSWER_EXCERPT_CHARS],
        ) from None
