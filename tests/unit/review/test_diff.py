"""Unified diffs of one file: parsing hunks, new-side line numbers, splitting by size."""

from __future__ import annotations

import itertools

import pytest

from llm_worker.review.diff import FileDiff, Hunk, parse_file_diff, split_diff

pytestmark = pytest.mark.unit

HEADER = "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py"
TWO_HUNKS = f"""{HEADER}
@@ -1,3 +1,4 @@ import os
 a
-b
+B
+c
 d
@@ -10,2 +11,3 @@ def total(items):
 x
+y
 z
"""


def test_parse_keeps_the_header_and_each_hunk():
    diff = parse_file_diff(TWO_HUNKS)

    assert diff.header == tuple(HEADER.splitlines())
    first, second = diff.hunks
    assert (first.old_start, first.new_start, first.section) == (1, 1, " import os")
    assert first.lines == (" a", "-b", "+B", "+c", " d")
    assert (second.old_start, second.new_start) == (10, 11)
    assert (first.old_count, first.new_count) == (3, 4)
    assert (second.old_count, second.new_count) == (2, 3)


def test_text_round_trips_with_recounted_headers():
    diff = parse_file_diff(TWO_HUNKS)

    assert diff.text() == TWO_HUNKS.rstrip("\n")
    assert parse_file_diff(diff.text()) == diff


def test_new_lines_are_the_added_and_context_lines_of_the_new_side():
    diff = parse_file_diff(TWO_HUNKS)

    assert diff.hunks[0].new_lines() == {1, 2, 3, 4}
    assert diff.hunks[1].new_lines() == {11, 12, 13}
    assert diff.new_lines() == {1, 2, 3, 4, 11, 12, 13}


def test_no_newline_markers_count_on_neither_side():
    hunk = parse_file_diff(
        "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-old\n\\ No newline at end of file\n+new\n"
        "\\ No newline at end of file\n"
    ).hunks[0]

    assert (hunk.old_count, hunk.new_count) == (1, 1)
    assert hunk.new_lines() == {1}
    assert hunk.header() == "@@ -1,1 +1,1 @@"


def test_a_text_without_hunks_is_refused():
    with pytest.raises(ValueError, match="no hunk"):
        parse_file_diff(f"{HEADER}\n")
    assert FileDiff((), ()).new_lines() == set()


def test_hunks_that_fit_together_stay_one_piece():
    diff = parse_file_diff(TWO_HUNKS)

    assert split_diff(diff, lambda text: True) == [diff]


def test_hunks_are_grouped_while_they_fit():
    diff = parse_file_diff(TWO_HUNKS)
    one_hunk_each = max(len(FileDiff(diff.header, (h,)).text()) for h in diff.hunks)

    pieces = split_diff(diff, lambda text: len(text) <= one_hunk_each)

    assert [piece.hunks for piece in pieces] == [(diff.hunks[0],), (diff.hunks[1],)]
    assert all(piece.header == diff.header for piece in pieces)


def test_a_hunk_too_large_is_cut_into_consecutive_pieces_with_right_numbers():
    body = [f"+added {n}" for n in range(6)] + [" context"]
    diff = FileDiff(("--- a/f", "+++ b/f"), (Hunk(4, 7, tuple(body)),))
    limit = len("\n".join((*diff.header, Hunk(4, 7, tuple(body[:2])).text())))

    pieces = split_diff(diff, lambda text: len(text) <= limit)

    hunks = [hunk for piece in pieces for hunk in piece.hunks]
    assert [line for hunk in hunks for line in hunk.lines] == body  # nothing lost or doubled
    assert all(len(piece.text()) <= limit for piece in pieces)
    assert len(hunks) > 1 and (hunks[0].old_start, hunks[0].new_start) == (4, 7)
    for earlier, later in itertools.pairwise(hunks):  # each starts where the last one ended
        assert later.old_start == earlier.old_start + earlier.old_count
        assert later.new_start == earlier.new_start + earlier.new_count
    assert set().union(*(hunk.new_lines() for hunk in hunks)) == diff.new_lines()


def test_a_single_line_that_cannot_fit_forms_its_own_piece():
    diff = FileDiff(("--- a/f", "+++ b/f"), (Hunk(1, 1, ("+" + "x" * 50, "+y")),))

    pieces = split_diff(diff, lambda text: len(text) < 40)

    assert [piece.hunks[0].lines for piece in pieces] == [("+" + "x" * 50,), ("+y",)]
    assert [piece.hunks[0].new_start for piece in pieces] == [1, 2]


def test_numbered_text_writes_each_new_side_line_number_at_its_start():
    diff = parse_file_diff(TWO_HUNKS)

    assert diff.numbered_text().splitlines()[3:] == [
        "@@ -1,3 +1,4 @@ import os",
        " 1  a",
        "   -b",
        " 2 +B",
        " 3 +c",
        " 4  d",
        "@@ -10,2 +11,3 @@ def total(items):",
        "11  x",
        "12 +y",
        "13  z",
    ]
    assert diff.new_side_code() == {1: "a", 2: "B", 3: "c", 4: "d", 11: "x", 12: "y", 13: "z"}
