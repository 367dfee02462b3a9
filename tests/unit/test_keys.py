"""Ids from messages become one key segment each, so no two different ids share a key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_worker import keys

pytestmark = pytest.mark.unit

ids = st.one_of(st.text(alphabet=":%3Aab#", min_size=1, max_size=8), st.integers())


@given(first=st.tuples(ids, ids), second=st.tuples(ids, ids))
def test_two_different_pairs_of_ids_never_share_a_conversation(first, second):
    same_key = keys.review_conversation("p", *first) == keys.review_conversation("p", *second)
    assert same_key == (tuple(map(str, first)) == tuple(map(str, second)))


@given(first=ids, second=ids)
def test_two_different_job_ids_never_share_a_notification_mark(first, second):
    same_key = keys.notified("p", "t", first, "m", 1) == keys.notified("p", "t", second, "m", 1)
    assert same_key == (str(first) == str(second))


@pytest.mark.parametrize("value", ["rr-1", "42", 7, "é✓"])
def test_ids_without_a_separator_are_written_as_they_are(value):
    assert keys.segment(value) == str(value)
