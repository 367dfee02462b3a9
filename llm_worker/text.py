"""Small helpers for the text operators read."""

from __future__ import annotations


def plural(count: int, noun: str) -> str:
    """``1 job``, ``2 jobs``; nouns ending in ``s`` take ``es`` (``2 processes``)."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun}es" if noun.endswith("s") else f"{count} {noun}s"
