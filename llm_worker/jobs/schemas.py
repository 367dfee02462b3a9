"""Payload and result shapes of every job type.

Payload models are strict (no coercion, no unknown fields): a producer's
mistake fails the job at once.  Result models are what the model must answer
with; they tolerate harmless variations (extra keys, ``"0.9"`` for 0.9) and
normalise what is safe to normalise (tag case and duplicates).
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    field_validator,
)

from llm_worker.identifiers import check_id

#: An identifier: see :mod:`llm_worker.identifiers` (length, no control characters).
JobId = (
    Annotated[StrictStr, AfterValidator(check_id)]
    | Annotated[StrictInt, Field(ge=-(2**63), lt=2**63)]
)


def _longest(chars: int) -> dict[str, Any]:
    """A ``maxLength`` in the JSON Schema only: it bounds what a schema-constrained engine
    can produce (and so its tokens), while a longer answer from another model is still
    accepted."""
    return {"maxLength": chars}


Confidence = Annotated[float, Field(ge=0.0, le=1.0)]


def _iso_8601(value: str) -> str:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be an ISO 8601 date-time") from None
    return value


IsoDateTime = Annotated[
    str, AfterValidator(_iso_8601), Field(json_schema_extra={"format": "date-time"})
]


class Payload(BaseModel):
    """Base of job payloads: strict types, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Result(BaseModel):
    """Base of results the model answers with."""

    model_config = ConfigDict(extra="ignore")


# -- payloads -----------------------------------------------------------------


class ImageTagPayload(Payload):
    """``image_tag``: an image stored under ``IMAGE_STORAGE_PATH``."""

    image_id: JobId
    path: StrictStr = Field(min_length=1)


class IntentPayload(Payload):
    """``intent_classify``: a user's message."""

    text: StrictStr = Field(min_length=1)


class FollowupPayload(Payload):
    """``followup``: an ambiguous message and optional conversation context."""

    text: StrictStr = Field(min_length=1)
    context: StrictStr | None = None


class TaskMatchPayload(Payload):
    """``task_match``: a new note to match against the user's open tasks."""

    content: StrictStr = Field(min_length=1)


class EmailExtractPayload(Payload):
    """``email_extract``: an email to extract calendar events from."""

    subject: StrictStr
    body: StrictStr
    received_at: IsoDateTime | None = None


# -- results ------------------------------------------------------------------


class ImageTagResult(Result):
    """A description of the image and 1 to 20 lowercase, unique tags."""

    description: str = Field(min_length=1, json_schema_extra=_longest(400))
    tags: list[Annotated[str, Field(json_schema_extra=_longest(40))]] = Field(
        min_length=1, max_length=20
    )

    @field_validator("tags", mode="before")
    @classmethod
    def _normalise_tags(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        seen: dict[str, None] = {}
        for tag in value:
            if not isinstance(tag, str):
                return value  # let the type check report it
            cleaned = " ".join(tag.lower().split())
            if cleaned:
                seen.setdefault(cleaned, None)
        return list(seen)


Intent = Literal["reminder", "task", "search", "general_note", "ambiguous"]


class IntentResult(Result):
    """The intent of a message and how sure the model is."""

    intent: Intent
    confidence: Confidence


class FollowupResult(Result):
    """One clarifying question."""

    question: str = Field(min_length=1, json_schema_extra=_longest(200))


class TaskMatchResult(Result):
    """The open task a note belongs to, if any."""

    task_id: StrictInt | StrictStr | None
    confidence: Confidence
    reason: str = Field(json_schema_extra=_longest(160))


class CalendarEvent(Result):
    """One calendar event found in an email."""

    title: str = Field(min_length=1, json_schema_extra=_longest(120))
    start: IsoDateTime
    end: IsoDateTime | None = None
    location: Annotated[str, Field(json_schema_extra=_longest(120))] | None = None
    confidence: Confidence


class EmailExtractResult(Result):
    """The calendar events found in an email (possibly none)."""

    events: list[CalendarEvent] = Field(json_schema_extra={"maxItems": 5})


class CoreTask(BaseModel):
    """An open task as Core lists it."""

    model_config = ConfigDict(extra="ignore")

    id: StrictInt | StrictStr
    title: str
    description: str | None = None


@lru_cache(maxsize=64)
def response_schema(model: type[Result]) -> dict[str, Any]:
    """The JSON Schema of ``model``, as sent to the LLM in ``response_format`` (cached:
    treat it as read-only)."""
    return model.model_json_schema()
