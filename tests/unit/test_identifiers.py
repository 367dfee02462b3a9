"""Which identifiers a job may carry, and how they become one URL path segment."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_worker.identifiers import ID_MAX_CHARS, check_id, id_problem, path_segment

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "value", ["a", "job-1", "é✓日本", "x" * ID_MAX_CHARS, 0, -(2**63), 2**63 - 1]
)
def test_usable_identifiers(value):
    assert id_problem(value) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "must be a non-empty string or an integer"),
        (True, "must be a non-empty string or an integer"),
        (1.5, "must be a non-empty string or an integer"),
        (None, "must be a non-empty string or an integer"),
        (2**63, "must fit in 64 bits"),
        (-(2**63) - 1, "must fit in 64 bits"),
        ("x" * (ID_MAX_CHARS + 1), f"must be at most {ID_MAX_CHARS} characters"),
        ("a\nb", "must not contain control characters"),
        ("a\x00", "must not contain control characters"),
        ("\ud800", "must not contain control characters"),
    ],
)
def test_unusable_identifiers_say_why(value, problem):
    assert id_problem(value) == problem


def test_check_id_is_a_validator():
    assert check_id("job-1") == "job-1"
    with pytest.raises(ValueError, match="control characters"):
        check_id("a\tb")


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        (12, "12"),
        ("a/b", "a%2Fb"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("...", "..."),
        ("a?b#c", "a%3Fb%23c"),
        ("100%", "100%25"),
    ],
)
def test_path_segments(value, segment):
    assert path_segment(value) == segment


@given(st.text(min_size=1, max_size=ID_MAX_CHARS).filter(lambda text: id_problem(text) is None))
def test_every_usable_identifier_is_exactly_one_segment_that_decodes_back(value):
    segment = path_segment(value)

    assert "/" not in segment and "?" not in segment and "#" not in segment
    assert segment not in (".", "..")
    assert unquote(segment) == value
