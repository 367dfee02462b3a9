"""Labelled cases: how a case file is read, and how each job's answer is scored.

A case file is JSON Lines, one case per line: ``{"job": ..., "input": {...},
"expect": {...}}`` (the shape of each job's ``input`` and ``expect`` is in the
manual, ``docs/evaluation.md``).  The bundled set is split in two files:
``dev`` (prompts, examples and models are chosen on it) and ``test`` (only
reported, never used for choosing); none of their texts is among the prompts'
few-shot examples (``tests/test_evaluation_cases.py`` keeps the three apart).
``llm-worker eval --cases FILE`` reads a user's own file of the same format.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from actors.email_extract import (
    EVENT_THRESHOLD,
    EmailExtractPayload,
    EmailExtractResult,
    model_data,
)
from actors.followup import FollowupPayload, FollowupResult
from actors.intent import IntentPayload, IntentResult
from actors.task_match import TaskMatchPayload, TaskMatchResult, accepted_match
from llm_worker.core.client import CoreTask
from llm_worker.jobs.schemas import Payload, Result
from llm_worker.review.schemas import CommentAnswer, ReviewRequestPayload

#: The folder of the bundled case files.
CASES_DIR = Path(__file__).parent / "cases"
#: The bundled splits, by name: choices are made on ``dev``; ``test`` is only reported.
SPLITS: dict[str, Path] = {"dev": CASES_DIR / "dev.jsonl", "test": CASES_DIR / "test.jsonl"}
#: The job types a case file may name, in the order the eval prints them.
JOB_TYPES = ("intent_classify", "email_extract", "task_match", "followup", "review")


class CaseFileError(ValueError):
    """A case file that cannot be read: the message names the file, the line and why."""


@dataclass(frozen=True)
class Case:
    """One labelled input: the actor's data for the model and how to score the answer.

    Attributes:
      job_type: the job (or ``review``) the case exercises.
      payload: the message's payload, as the actor validates it.
      data: what the actor shows the model (the payload, plus Core's data where it reads some).
      result_model: the answer's schema.
      label: the expected answer, as written in the file's ``expect``.
      score: whether an answer (schema-valid, post-processed) is right.
      parts: for answers with several expected parts (an email's events), how many of them
        the answer got right, of how many; ``None`` for the others.
      labelled: whether the answer is scored against a categorical label (a majority
        baseline exists).
      where: ``file:line``.
    """

    job_type: str
    payload: Payload
    data: dict[str, Any]
    result_model: type[Result]
    label: Any
    score: Callable[[Any], bool]
    parts: Callable[[Any], tuple[int, int]] | None = None
    labelled: bool = True
    where: str = ""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _IntentExpect(_Strict):
    intent: StrictStr


class _ExpectedEvent(_Strict):
    start: StrictStr


class _EmailExpect(_Strict):
    events: list[_ExpectedEvent] = Field(max_length=5)


class _TaskInput(_Strict):
    content: StrictStr
    open_tasks: list[CoreTask]


class _TaskExpect(_Strict):
    task_id: StrictInt | StrictStr | None


class _FollowupExpect(_Strict):
    forbidden: list[StrictStr] = []


class _ReviewExpect(_Strict):
    line: StrictInt = Field(ge=1)


def start_matches(expected: str, answer: str) -> bool:
    """Whether an event's ``answer`` start is the ``expected`` one.

    ``expected`` is a date (``2026-11-12``: the answer's date must be it), a wall-clock
    time (``2026-11-12T10:00``: the answer's local date and time, to the minute, whatever
    its offset), or a time with an offset (``2026-11-12T10:00+01:00``: the same instant
    when the answer has an offset, the same wall clock when it has none).
    """
    try:
        answered = datetime.fromisoformat(answer.replace("Z", "+00:00"))
    except ValueError:
        return False
    if "T" not in expected:
        return answered.date().isoformat() == expected
    wanted = datetime.fromisoformat(expected.replace("Z", "+00:00"))
    if wanted.tzinfo is not None and answered.tzinfo is not None:
        return wanted == answered
    wall = answered.replace(tzinfo=None, second=0, microsecond=0)
    return wanted.replace(tzinfo=None) == wall


def _kept_events(result: EmailExtractResult) -> list[Any]:
    return [event for event in result.events if event.confidence > EVENT_THRESHOLD]


def _events_right(result: EmailExtractResult, starts: list[str]) -> tuple[int, int]:
    """Expected events matched by a distinct kept event with the right start, of all expected."""
    free = [event.start for event in _kept_events(result)]
    hits = 0
    for start in starts:
        match = next((i for i, found in enumerate(free) if start_matches(start, found)), None)
        if match is not None:
            hits += 1
            free.pop(match)
    return hits, len(starts)


def _email_right(result: EmailExtractResult, starts: list[str]) -> bool:
    kept = _kept_events(result)
    return len(kept) == len(starts) and _events_right(result, starts)[0] == len(starts)


def _intent_case(given: dict[str, Any], expect: dict[str, Any]) -> Case:
    payload = IntentPayload.model_validate(given)
    label = _IntentExpect.model_validate(expect).intent
    allowed = IntentResult.model_json_schema()["properties"]["intent"]["enum"]
    if label not in allowed:
        raise ValueError(f"intent {label!r} is not one of {allowed}")
    return Case(
        "intent_classify",
        payload,
        payload.model_dump(),
        IntentResult,
        label,
        lambda result: result.intent == label,
    )


def _email_case(given: dict[str, Any], expect: dict[str, Any]) -> Case:
    payload = EmailExtractPayload.model_validate(given)
    starts = [event.start for event in _EmailExpect.model_validate(expect).events]
    for start in starts:
        datetime.fromisoformat(start.replace("Z", "+00:00"))  # ValueError names it
    return Case(
        "email_extract",
        payload,
        model_data(payload, datetime.now(UTC)),
        EmailExtractResult,
        starts,
        partial(_email_right, starts=starts),
        parts=partial(_events_right, starts=starts),
    )


def _task_case(given: dict[str, Any], expect: dict[str, Any]) -> Case:
    task_input = _TaskInput.model_validate(given)
    expected = _TaskExpect.model_validate(expect).task_id
    tasks = task_input.open_tasks
    if expected is not None and str(expected) not in {str(task.id) for task in tasks}:
        raise ValueError(f"task_id {expected!r} is not among the open tasks")

    def right(result: TaskMatchResult) -> bool:
        return accepted_match(result, tasks).task_id == expected

    return Case(
        "task_match",
        TaskMatchPayload(content=task_input.content),
        {"note": task_input.content, "open_tasks": [task.model_dump() for task in tasks]},
        TaskMatchResult,
        expected,
        right,
    )


def _followup_case(given: dict[str, Any], expect: dict[str, Any]) -> Case:
    payload = FollowupPayload.model_validate(given)
    forbidden = [phrase.lower() for phrase in _FollowupExpect.model_validate(expect).forbidden]

    def right(result: FollowupResult) -> bool:
        question = result.question.strip().lower()
        return question.endswith("?") and not any(phrase in question for phrase in forbidden)

    return Case(
        "followup",
        payload,
        payload.model_dump(),
        FollowupResult,
        "a question",
        right,
        labelled=False,
    )


def _review_case(given: dict[str, Any], expect: dict[str, Any]) -> Case:
    payload = ReviewRequestPayload.model_validate({"repo": "eval", "chunk": given})
    line = _ReviewExpect.model_validate(expect).line

    def right(result: Any) -> bool:
        comments = getattr(result, "comments", None) or []
        return any(c.line <= line <= (c.end_line or c.line) for c in comments)

    return Case("review", payload, {}, CommentAnswer, line, right, labelled=False)


_BUILDERS: dict[str, Callable[[dict[str, Any], dict[str, Any]], Case]] = {
    "intent_classify": _intent_case,
    "email_extract": _email_case,
    "task_match": _task_case,
    "followup": _followup_case,
    "review": _review_case,
}


def _case(line: str) -> Case:
    entry = json.loads(line)
    if not isinstance(entry, dict) or set(entry) != {"job", "input", "expect"}:
        raise ValueError('a case is an object with exactly "job", "input" and "expect"')
    builder = _BUILDERS.get(entry["job"]) if isinstance(entry["job"], str) else None
    if builder is None:
        raise ValueError(f"unknown job {entry['job']!r} (one of {list(JOB_TYPES)})")
    if not isinstance(entry["input"], dict) or not isinstance(entry["expect"], dict):
        raise ValueError('"input" and "expect" must be objects')
    return builder(entry["input"], entry["expect"])


def read_cases(path: Path) -> list[Case]:
    """Every case of the JSON Lines file at ``path`` (blank lines are skipped).

    Raises:
      CaseFileError: naming the file and line, when the file cannot be read or a line is
        not a valid case.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseFileError(f"{path}: cannot be read: {exc}") from None
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            case = _case(line)
        except ValidationError as exc:
            reason = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()
            )
            raise CaseFileError(f"{path}:{number}: {reason}") from None
        except ValueError as exc:  # JSONDecodeError too
            raise CaseFileError(f"{path}:{number}: {exc}") from None
        found.append(replace(case, where=f"{path.name}:{number}"))
    if not found:
        raise CaseFileError(f"{path}: holds no case")
    return found


def by_job(cases: list[Case]) -> dict[str, list[Case]]:
    """``cases`` grouped by job type, in the order of :data:`JOB_TYPES`."""
    grouped: dict[str, list[Case]] = {}
    for job_type in JOB_TYPES:
        found = [case for case in cases if case.job_type == job_type]
        if found:
            grouped[job_type] = found
    return grouped
