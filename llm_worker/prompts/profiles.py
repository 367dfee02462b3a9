"""The prompt profile in force: per job, the task text, examples and answer budget.

The data lives in :mod:`llm_worker.prompts.data`, and in the prompt entries a job
type declares with its record (:class:`~llm_worker.jobs.registry.JobType`); this
module reads the profile named by ``LLM_PROMPT_PROFILE``, lays ``LLM_PROMPTS_FILE``
over it, and checks the shape once, so a bad file stops the worker at start-up.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from llm_worker.errors import SettingsError
from llm_worker.prompts.data import PROFILES


@dataclass(frozen=True)
class Example:
    """One labelled example: the data the model is shown and the answer it should give."""

    data: dict[str, Any]
    answer: dict[str, Any]


@dataclass(frozen=True)
class JobPrompt:
    """How one job type asks the model.

    Attributes:
      task: the instructions (the system prompt's first part).
      examples: shown as earlier user/model turns before the real data.
      max_tokens: the answer's budget (capped by ``LLM_MAX_OUTPUT_TOKENS``); ``None``: the cap.
      schema_in_prompt: whether the JSON Schema is also written in the system prompt
        (needless when the engine enforces it and the task describes the fields).
      max_tool_calls: review only: tool calls per chunk (capped by ``REVIEW_MAX_TOOL_CALLS``;
        ``0``: the model answers at once).
      examples_as: ``system`` (written into the system prompt after the task) or ``turns``
        (earlier user/model turns).
      quote_lines: review only: which lines' code a comment may quote (and so be anchored
        at), ``shown`` (every new-side line of the chunk) or ``added`` (its ``+`` lines).
    """

    task: str = ""
    examples: tuple[Example, ...] = field(default_factory=tuple)
    max_tokens: int | None = None
    schema_in_prompt: bool = True
    max_tool_calls: int | None = None
    examples_as: str = "system"
    quote_lines: str = "shown"

    def answer_tokens(self, cap: int) -> int:
        """The ``max_tokens`` to send, never over ``cap``."""
        return min(self.max_tokens, cap) if self.max_tokens else cap


#: The keys of one job's entry.
KEYS = (
    "task",
    "examples",
    "max_tokens",
    "schema_in_prompt",
    "max_tool_calls",
    "examples_as",
    "quote_lines",
)


def _is_example(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("data"), dict)
        and isinstance(value.get("answer"), dict)
    )


def _job_prompt(job_type: str, raw: Any) -> JobPrompt:
    if not isinstance(raw, dict):
        raise SettingsError(f"prompt of {job_type!r} must be an object")
    unknown = set(raw) - {*KEYS}
    if unknown:
        raise SettingsError(f"prompt of {job_type!r} has unknown keys {sorted(unknown)}")
    examples = raw.get("examples") or []
    if not isinstance(examples, list) or not all(
        isinstance(e, dict)
        and isinstance(e.get("data"), dict)
        and isinstance(e.get("answer"), dict)
        for e in examples
    ):
        raise SettingsError(f"examples of {job_type!r} must be [{{'data': {{}}, 'answer': {{}}}}]")
    for key, least in (("max_tokens", 1), ("max_tool_calls", 0)):
        value = raw.get(key)
        if value is not None and (not isinstance(value, int) or value < least):
            kind = "a positive integer" if least else "a non-negative integer"
            raise SettingsError(f"{key} of {job_type!r} must be {kind}")
    if raw.get("examples_as", "system") not in ("system", "turns"):
        raise SettingsError(f"examples_as of {job_type!r} must be 'system' or 'turns'")
    if raw.get("quote_lines", "shown") not in ("shown", "added"):
        raise SettingsError(f"quote_lines of {job_type!r} must be 'shown' or 'added'")
    return JobPrompt(
        task=str(raw.get("task", "")),
        examples=tuple(Example(e["data"], e["answer"]) for e in examples),
        max_tokens=raw.get("max_tokens"),
        schema_in_prompt=bool(raw.get("schema_in_prompt", True)),
        max_tool_calls=raw.get("max_tool_calls"),
        examples_as=str(raw.get("examples_as", "system")),
        quote_lines=str(raw.get("quote_lines", "shown")),
    )


@dataclass(frozen=True)
class PromptProfile:
    """The prompts of every job type."""

    name: str
    jobs: dict[str, JobPrompt]

    def job(self, job_type: str) -> JobPrompt:
        """The prompt of ``job_type`` (an empty one when the profile has none)."""
        return self.jobs.get(job_type, JobPrompt())


#: Per job type, its prompt entries by profile name (``"default"`` serves every profile
#: without its own): what a job type declares beside its record.
DeclaredPrompts = Mapping[str, Mapping[str, Mapping[str, Any]]]


def build_profile(
    name: str,
    overrides: dict[str, Any] | None = None,
    declared: DeclaredPrompts | None = None,
) -> PromptProfile:
    """The profile ``name``: the job types' ``declared`` entries, the profile's data laid
    over them, then ``overrides`` (same shape), key by key.

    Raises:
      SettingsError: on an unknown profile or a badly shaped entry.
    """
    if name not in PROFILES:
        raise SettingsError(f"unknown LLM_PROMPT_PROFILE {name!r} (one of {sorted(PROFILES)})")
    merged: dict[str, dict[str, Any]] = {}
    for job, by_profile in (declared or {}).items():
        entry = by_profile.get(name, by_profile.get("default"))
        if entry is not None:
            merged[job] = dict(entry)
    for job, entry in PROFILES[name].items():
        merged[job] = {**merged.get(job, {}), **entry}
    for job, entry in (overrides or {}).items():
        if not isinstance(entry, dict):
            raise SettingsError(f"prompt of {job!r} must be an object")
        merged[job] = {**PROFILES["default"].get(job, {}), **merged.get(job, {}), **entry}
    return PromptProfile(name, {job: _job_prompt(job, entry) for job, entry in merged.items()})


def load_profile(
    name: str, prompts_file: str | None, declared: DeclaredPrompts | None = None
) -> PromptProfile:
    """The profile ``name`` (with the job types' ``declared`` entries) and the JSON file
    ``prompts_file`` (if any) laid over it.

    Raises:
      SettingsError: on an unreadable file or a badly shaped entry.
    """
    return build_profile(name, _read_overrides(prompts_file), declared)


@lru_cache(maxsize=8)
def _read_overrides(prompts_file: str | None) -> dict[str, Any] | None:
    """The entries of ``LLM_PROMPTS_FILE``, read once per file name.

    Raises:
      SettingsError: on an unreadable file or one that holds no JSON object.
    """
    overrides = None
    if prompts_file:
        try:
            overrides = json.loads(Path(prompts_file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SettingsError(f"invalid setting LLM_PROMPTS_FILE: {exc}") from None
        if not isinstance(overrides, dict):
            raise SettingsError("invalid setting LLM_PROMPTS_FILE: must hold a JSON object")
    return overrides
