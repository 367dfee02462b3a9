"""Payloads of ``review_chunk`` and the answers the model may give."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, TypeAdapter

from llm_worker.jobs.schemas import JobId, Payload, Result
from llm_worker.review.protocol import Event

Tool = Literal["read_file", "find_definition", "search_code"]


class Chunk(Payload):
    """One file's part of a pull request's diff."""

    path: StrictStr = Field(min_length=1)
    diff: StrictStr = Field(min_length=1)
    language: StrictStr | None = None


class ReviewRequestPayload(Payload):
    """``REVIEW_REQUEST``: start reviewing a chunk."""

    repo: StrictStr = Field(min_length=1)
    title: StrictStr | None = None
    description: StrictStr | None = None
    chunk: Chunk


class ContextReadyPayload(Payload):
    """``CONTEXT_READY``: the git worker's answer to a tool call."""

    tool_call_id: StrictStr = Field(min_length=1)
    content: StrictStr = ""
    error: StrictStr | None = None


class ReviewArguments(BaseModel):
    """The validated arguments of one ``review_chunk`` message."""

    model_config = ConfigDict(frozen=True)

    review_request_id: JobId
    chunk_id: JobId
    event: Event
    payload: ReviewRequestPayload | ContextReadyPayload


class ToolCallAnswer(Result):
    """The model asks the git worker for more context."""

    action: Literal["tool_call"]
    tool: Tool
    arguments: dict[str, Any]
    reason: str = ""


class ReviewComment(Result):
    """One review comment on a line (or range) of the chunk's new side, its code quoted first."""

    # ``code`` comes before ``line`` so the model picks the code, then its number; it anchors
    # the comment (llm_worker.review.loop.anchor_comments) and is not sent to the git worker.

    path: str
    code: Annotated[str, Field(json_schema_extra={"maxLength": 300})] | None = None
    line: int
    end_line: int | None = None
    severity: Literal["info", "warning", "error"]
    # maxLength/maxItems in the schema only: they bound a schema-constrained engine's answer
    # to its max_tokens, while longer answers of other models are still accepted.
    body: str = Field(min_length=1, json_schema_extra={"maxLength": 300})
    suggestion: Annotated[str, Field(json_schema_extra={"maxLength": 300})] | None = None


class CommentAnswer(Result):
    """The model's comments on the chunk, all in one pass."""

    action: Literal["comment"]
    comments: list[ReviewComment] = Field(min_length=1, json_schema_extra={"maxItems": 3})


class NoIssuesAnswer(Result):
    """The model found nothing to comment on."""

    action: Literal["no_issues"]
    summary: str


ReviewAnswer = Annotated[
    ToolCallAnswer | CommentAnswer | NoIssuesAnswer, Field(discriminator="action")
]
FinalAnswer = Annotated[CommentAnswer | NoIssuesAnswer, Field(discriminator="action")]


@lru_cache(maxsize=2)
def _adapter(tools_allowed: bool) -> TypeAdapter[Any]:
    return TypeAdapter(ReviewAnswer if tools_allowed else FinalAnswer)


@lru_cache(maxsize=2)
def answer_schema(*, tools_allowed: bool) -> dict[str, Any]:
    """The JSON Schema of the answer; without ``tool_call`` once tool calls are used up
    (cached: treat it as read-only)."""
    return _adapter(tools_allowed).json_schema()


def chunk_answer_schema(
    *, tools_allowed: bool, path: str, lines: Iterable[int], code: Iterable[str] = ()
) -> dict[str, Any]:
    """:func:`answer_schema` narrowed to one chunk: a comment's ``path`` is the chunk's, its
    ``code`` (required) one of the new side's non-blank lines ``code`` (stripped), and its
    ``line`` and ``end_line`` are lines of the chunk's new side, so a schema-constrained
    engine cannot point a comment elsewhere."""
    schema = copy.deepcopy(answer_schema(tools_allowed=tools_allowed))
    shown = sorted(set(lines))
    definition = schema["$defs"]["ReviewComment"]
    comment = definition["properties"]
    comment["path"] = {"const": path, "type": "string"}
    quoted = sorted({text.strip() for text in code if text.strip()})
    if quoted:
        comment["code"] = {"enum": quoted, "type": "string"}
        rest = [name for name in definition.get("required", []) if name not in ("path", "code")]
        definition["required"] = ["path", "code", *rest]
    if shown:
        comment["line"] = {"enum": shown, "type": "integer"}
        comment["end_line"] = {"anyOf": [{"enum": shown, "type": "integer"}, {"type": "null"}]}
    return schema


def parse_review_answer(value: dict[str, Any], *, tools_allowed: bool) -> Any:
    """Validate the model's JSON object as one of the allowed answers.

    Raises:
      pydantic.ValidationError: when it is none of them.
    """
    return _adapter(tools_allowed).validate_python(value)


def review_schemas() -> dict[str, dict[str, Any]]:
    """Every answer schema the review loop sends, by name (one chunk's stands for all)."""
    return {
        "ReviewAnswer": answer_schema(tools_allowed=True),
        "ReviewAnswerNoTools": answer_schema(tools_allowed=False),
        "ReviewAnswerOfAChunk": chunk_answer_schema(
            tools_allowed=True, path="app.py", lines=[1, 2, 3], code=["x = 1", "print(x)"]
        ),
    }
