"""Small helpers for the text operators read."""

from __future__ import annotations

from urllib.parse import urlsplit


def plural(count: int, noun: str) -> str:
    """``1 job``, ``2 jobs``; nouns ending in ``s`` take ``es`` (``2 processes``)."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun}es" if noun.endswith("s") else f"{count} {noun}s"


def safe_url(url: str) -> str:
    """``url`` as it may be logged or shown: without its credentials (``***@``) or its
    query (``?***``), which may carry a password or a token; ``<unparsable URL>`` when it
    cannot be read as one."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    host = parts.netloc.rpartition("@")[2]
    userinfo = "***@" if "@" in parts.netloc else ""
    query = "?***" if parts.query else ""
    return f"{parts.scheme}://{userinfo}{host}{parts.path}{query}"
