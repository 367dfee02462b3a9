"""Binding and validating the ``(job_id, user_id, payload)`` arguments of a job."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from llm_worker.errors import InvalidPayload
from llm_worker.identifiers import id_problem
from llm_worker.identity import ARGUMENT_NAMES
from llm_worker.jobs.schemas import Payload

P = TypeVar("P", bound=Payload)


@dataclass(frozen=True)
class JobArguments(Generic[P]):
    """The validated arguments of one job."""

    job_id: str | int
    user_id: int
    payload: P


def bind_arguments(
    args: Sequence[Any], kwargs: Mapping[str, Any], names: Sequence[str] = ARGUMENT_NAMES
) -> dict[str, Any]:
    """Map positional and keyword arguments onto ``names`` (``job_id, user_id, payload``).

    Raises:
      InvalidPayload: for too many, duplicate, unknown or missing arguments.
    """
    if len(args) > len(names):
        raise InvalidPayload("arguments", f"expected {len(names)} arguments, got {len(args)}")
    bound = dict(zip(names, args, strict=False))
    for name, value in kwargs.items():
        if name not in names:
            raise InvalidPayload(name, "unknown argument")
        if name in bound:
            raise InvalidPayload(name, "given both by position and by name")
        bound[name] = value
    for name in names:
        if name not in bound:
            raise InvalidPayload(name, "missing argument")
    return bound


def validation_problem(exc: ValidationError, prefix: str) -> InvalidPayload:
    """The first error of a pydantic validation as :class:`InvalidPayload`."""
    error = exc.errors()[0]
    field = ".".join(str(part) for part in (prefix, *error["loc"]))
    return InvalidPayload(field, error["msg"])


def parse_arguments(
    args: Sequence[Any], kwargs: Mapping[str, Any], payload_model: type[P]
) -> JobArguments[P]:
    """Validate a job's arguments against its payload model.

    Raises:
      InvalidPayload: naming the first offending argument or payload field.
    """
    bound = bind_arguments(args, kwargs)
    problem = id_problem(bound["job_id"])
    if problem is not None:
        raise InvalidPayload("job_id", problem)
    user_id = bound["user_id"]
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        raise InvalidPayload("user_id", "must be an integer")
    payload = bound["payload"]
    if not isinstance(payload, dict):
        raise InvalidPayload("payload", f"must be an object, got {type(payload).__name__}")
    try:
        parsed = payload_model.model_validate(payload)
    except ValidationError as exc:
        raise validation_problem(exc, "payload") from None
    return JobArguments(job_id=bound["job_id"], user_id=user_id, payload=parsed)
