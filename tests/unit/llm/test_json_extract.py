"""One JSON object out of an LLM's answer text, and its validation against the schema."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from llm_worker.errors import InvalidLLMResponse
from llm_worker.llm.json_extract import ANSWER_EXCERPT_CHARS, extract_json_object, parse_answer

pytestmark = pytest.mark.unit


class Verdict(BaseModel):
    intent: str = Field(min_length=1)
    confidence: float = Field(ge=0, le=1)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1}',
        '  \n{"a": 1}\n',
        'Sure! Here it is:\n```json\n{"a": 1}\n```\nAnything else?',
        '```\n{"a": 1}\n```',
        'The answer is {"a": 1} and that is all.',
        '{"a": 1} {"a": 2}',
    ],
    ids=["bare", "padded", "json-fence", "plain-fence", "in-prose", "first-of-two"],
)
def test_the_first_object_is_found(text):
    assert extract_json_object(text) == {"a": 1}


def test_nested_values_and_braces_in_strings_survive():
    text = 'ok: {"text": "a } b {", "list": [1, {"x": null}]} trailing'

    assert extract_json_object(text) == {"text": "a } b {", "list": [1, {"x": None}]}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "the answer was empty"),
        ("   \n", "the answer was empty"),
        ("I am not sure.", "the answer contained no JSON object"),
        ("[1, 2, 3]", "the answer contained no JSON object"),
        ('{"a": 1', "the answer contained no JSON object"),
    ],
)
def test_no_object_is_an_invalid_answer_with_feedback(text, problem):
    with pytest.raises(InvalidLLMResponse) as caught:
        extract_json_object(text)

    assert caught.value.problem == problem
    assert caught.value.answer == text


def test_the_answer_kept_for_feedback_is_cut():
    with pytest.raises(InvalidLLMResponse) as caught:
        extract_json_object("x" * (ANSWER_EXCERPT_CHARS + 500))

    assert len(caught.value.answer) == ANSWER_EXCERPT_CHARS


def test_a_valid_object_is_validated_into_the_model():
    verdict = parse_answer('```json\n{"intent": "task", "confidence": 0.5}\n```', Verdict)

    assert verdict == Verdict(intent="task", confidence=0.5)


def test_schema_errors_name_each_field():
    with pytest.raises(InvalidLLMResponse) as caught:
        parse_answer('{"intent": "", "confidence": 3}', Verdict)

    problem = caught.value.problem
    assert problem.startswith("the JSON did not match the schema: ")
    assert "intent: String should have at least 1 character" in problem
    assert "confidence: Input should be less than or equal to 1" in problem
    assert caught.value.answer == '{"intent": "", "confidence": 3}'
