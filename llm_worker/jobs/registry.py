"""The job types: each declared once, in its actor's module, as a :class:`JobType`.

Declaring an actor with :func:`actors.job_actor.job_actor` registers its job type
here; what needs to know every job type (the worker's start-up schema check,
``llm-worker send`` and ``status``, the evaluation, the manual) reads
:func:`job_types` instead of naming them.  The registry fills as actor modules
are imported: importing :mod:`actors` registers them all.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic

from llm_worker.jobs.arguments import P
from llm_worker.jobs.schemas import Result, response_schema

#: Default LLM priority of a job type (lower runs first when capacity is short).
BATCH_PRIORITY = 10
#: Default LLM priority of a job a user waits for.
INTERACTIVE_PRIORITY = 0


@dataclass(frozen=True)
class JobType(Generic[P]):
    """One kind of life-organiser job.

    Attributes:
      name: the actor name producers send to, and the job type in Core and in Redis keys.
      queue: the queue its messages go to.
      payload_model: the payload's pydantic model, checked at send and at pick-up.
      result_model: what the model must answer with.
      notification: the message type of the notification a completed job publishes,
        or ``None`` for a job type that publishes none.
      notifies_only: for a job type whose completed jobs may publish nothing, when
        they publish (``llm-worker send --wait`` says it); ``None`` when every
        completed job publishes.
      priority: its LLM calls' priority when capacity is short (lower runs first),
        unless ``LLM_PRIORITY_<NAME>`` sets another.
      prompts: its prompt entries by profile name (``"default"`` serves every profile
        without its own), each shaped as an entry of ``LLM_PROMPTS_FILE``
        (:class:`~llm_worker.prompts.profiles.JobPrompt`); the data in
        :mod:`llm_worker.prompts.data` and ``LLM_PROMPTS_FILE`` are laid over them.
    """

    name: str
    queue: str
    payload_model: type[P]
    result_model: type[Result]
    notification: str | None
    notifies_only: str | None = None
    priority: int = BATCH_PRIORITY
    prompts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


_lock = threading.Lock()
_registry: dict[str, JobType[Any]] = {}


def register(job_type: JobType[P]) -> JobType[P]:
    """Add ``job_type`` to the registry; declaring the same one again does nothing.

    Raises:
      ValueError: when another job type already has its name.
    """
    with _lock:
        known = _registry.setdefault(job_type.name, job_type)
    if known is not job_type and known != job_type:
        raise ValueError(f"job type {job_type.name!r} is declared twice")
    return job_type


def job_types() -> Mapping[str, JobType[Any]]:
    """Every registered job type by name (read-only)."""
    return MappingProxyType(_registry)


def job_type(name: str) -> JobType[Any] | None:
    """The job type called ``name``, or ``None``."""
    return _registry.get(name)


def declared_prompts() -> dict[str, Mapping[str, Mapping[str, Any]]]:
    """The prompt entries every registered job type declares, by job type."""
    return {name: declared.prompts for name, declared in _registry.items() if declared.prompts}


def answer_schemas() -> dict[str, dict[str, Any]]:
    """The answer schema of every registered job type, by its result model's name."""
    return {
        declared.result_model.__name__: response_schema(declared.result_model)
        for declared in _registry.values()
    }
