"""What every job's payload and result shapes are built from.

Each job type declares its own payload and result models in its actor's module,
from the bases and field types here.

Payload models are strict (no coercion, no unknown fields): a producer's
mistake fails the job at once.  Result models are what the model must answer
with; they tolerate harmless variations (extra keys, ``"0.9"`` for 0.9) and
normalise what is safe to normalise (tag case and duplicates).
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
)

from llm_worker.identifiers import check_id

#: An identifier: see :mod:`llm_worker.identifiers` (length, no control characters).
JobId = (
    Annotated[StrictStr, AfterValidator(check_id)]
    | Annotated[StrictInt, Field(ge=-(2**63), lt=2**63)]
)


def longest(chars: int) -> dict[str, Any]:
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


@lru_cache(maxsize=64)
def response_schema(model: type[Result]) -> dict[str, Any]:
    """The JSON Schema of ``model``, as sent to the LLM in ``response_format`` (cached:
    treat it as read-only)."""
    return model.model_json_schema()
