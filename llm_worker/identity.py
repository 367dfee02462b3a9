"""Who a job is, in one place: the job, its messages and their deliveries.

- **The job**: its type (the actor name) and ``job_id``, as Core knows it; with the
  ``user_id`` it is for (:class:`JobRef`).  Results, leases and reports are keyed by
  the job.
- **A message**: one ``actor.send``; its ``message_id`` is shared by every copy of it
  (a retry, a hold, a redelivery, a requeue from the dead letters)
  (:func:`message_key`).  The finished marker and the expiry claim are keyed by it.
- **A delivery**: one fetch of one copy of a message by one worker
  (:func:`delivery_key`, unique across the fleet).  The job's lease holder and the
  outcome log are keyed by it, so two copies of one message running at once (a host
  back from a partition or a freeze while another host runs the redelivered copy)
  are two holders: one calls the LLM, the other waits and reuses its result.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, cast

import dramatiq
from dramatiq.broker import MessageProxy

from llm_worker.identifiers import id_problem

#: A message as actors see it, or as middleware hooks receive it.
AnyMessage = dramatiq.Message[Any] | MessageProxy

#: The arguments of a job actor, in order: ``(job_id, user_id, payload)``.
ARGUMENT_NAMES = ("job_id", "user_id", "payload")


def as_message(message: AnyMessage) -> dramatiq.Message[Any]:
    """``message`` typed as ``broker.enqueue`` wants it: a ``MessageProxy`` stands in for
    its message there, as in Dramatiq's own ``Retries``."""
    return cast("dramatiq.Message[Any]", message)


def is_job_id(value: Any) -> bool:
    """Whether ``value`` is a usable id (see :mod:`llm_worker.identifiers`)."""
    return id_problem(value) is None


def message_key(message: AnyMessage) -> str:
    """The key of a message, shared by every copy of it: its ``message_id``."""
    return str(message.message_id)


#: The attribute of a fetched message (Dramatiq's per-fetch ``MessageProxy``) that holds its
#: delivery key once :func:`delivery_key` made it.
DELIVERY_KEY_ATTRIBUTE = "_llmw_delivery_key"


def delivery_key(message: AnyMessage) -> str:
    """The key of this delivery of ``message``: ``{message_id}/{random hex}``, made at its
    first use and kept on the fetched message, so every fetch of every copy, on every host,
    has its own.  A bare ``Message`` (never fetched) is keyed by its message id."""
    if not isinstance(message, MessageProxy):
        return str(message.message_id)
    key = vars(message).get(DELIVERY_KEY_ATTRIBUTE)
    if key is None:
        key = f"{message.message_id}/{uuid.uuid4().hex}"
        setattr(message, DELIVERY_KEY_ATTRIBUTE, key)
    return str(key)


@dataclass(frozen=True)
class JobRef:
    """Who and what a job message is about, read without validating the payload."""

    job_type: str
    job_id: str | int | None
    user_id: int | None

    @classmethod
    def from_message(cls, message: AnyMessage) -> JobRef:
        """Read ``job_id`` and ``user_id`` from a job message, where they are usable
        (an id that fails :func:`~llm_worker.identifiers.id_problem` is not)."""
        bound = dict(zip(ARGUMENT_NAMES, message.args, strict=False))
        bound.update(message.kwargs)
        job_id = bound.get("job_id")
        user_id = bound.get("user_id")
        if not is_job_id(job_id):
            job_id = None
        if not isinstance(user_id, int) or isinstance(user_id, bool):
            user_id = None
        return cls(message.actor_name, job_id, user_id)
