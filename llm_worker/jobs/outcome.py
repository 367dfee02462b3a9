"""The outcome of the message being processed on this thread, noted by the middleware.

Each middleware that decides a job's fate notes it here (``skipped``,
``expired``, ``held``, ``retrying``, ``failed``); the outcome log reads it
once the message is done.
"""

from __future__ import annotations

import threading

_current = threading.local()


def note_outcome(outcome: str, error: str | None = None) -> None:
    """Note what happened to the current message (the last note wins)."""
    _current.outcome = (outcome, error)


def take_outcome() -> tuple[str, str | None] | None:
    """The noted outcome of the current message, cleared."""
    noted: tuple[str, str | None] | None = getattr(_current, "outcome", None)
    _current.outcome = None
    return noted
