"""What a job's identifiers may be, and how they go into Core's URLs.

An identifier (``job_id``, ``image_id``, a review's ids) is a non-empty string of
at most :data:`ID_MAX_CHARS` characters without control characters, or an
integer of 64 bits.  Producers are refused such ids at send; a job that carries
one anyway fails at pick-up.  In a URL an identifier is always exactly one path
segment: every character outside the unreserved set is percent-encoded.
"""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import quote

#: Longest identifier string accepted, in characters.
ID_MAX_CHARS = 200
#: Integers must fit in a signed 64-bit column.
ID_INT_RANGE = range(-(2**63), 2**63)


def id_problem(value: Any) -> str | None:
    """Why ``value`` is not a usable identifier, or ``None`` when it is one."""
    if isinstance(value, bool):
        return "must be a non-empty string or an integer"
    if isinstance(value, int):
        return None if value in ID_INT_RANGE else "must fit in 64 bits"
    if not isinstance(value, str) or value == "":
        return "must be a non-empty string or an integer"
    if len(value) > ID_MAX_CHARS:
        return f"must be at most {ID_MAX_CHARS} characters"
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in value):
        return "must not contain control characters"
    return None


def check_id(value: str) -> str:
    """``value`` when it is a usable identifier string (a pydantic validator).

    Raises:
      ValueError: saying why it is not.
    """
    problem = id_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def path_segment(value: str | int) -> str:
    """``value`` as exactly one URL path segment: ``/``, ``?``, ``#``, ``%``, ``.``-only
    names and every non-ASCII character are percent-encoded (UTF-8)."""
    text = str(value)
    segment = quote(text, safe="")
    if segment in (".", ".."):  # dot segments are removed by URL normalisation
        return segment.replace(".", "%2E")
    return segment
