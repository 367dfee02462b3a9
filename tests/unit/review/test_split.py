"""Splitting a large diff asks whether a piece fits about log2(lines) times a piece, not
once a line: each question may count a whole prompt's tokens."""

from __future__ import annotations

import math

import pytest

from llm_worker.review.diff import parse_file_diff, split_diff

pytestmark = pytest.mark.unit

LINES = 2_000


def _one_big_hunk() -> str:
    body = "".join(f"+line {n} of the new file\n" for n in range(LINES))
    return f"--- a/big.py\n+++ b/big.py\n@@ -0,0 +1,{LINES} @@\n{body}"


def test_a_large_hunk_is_split_with_a_logarithmic_number_of_fits_calls():
    calls: list[int] = []

    def fits(text: str) -> bool:
        calls.append(len(text))
        return len(text) <= 8_000

    parts = split_diff(parse_file_diff(_one_big_hunk()), fits)

    assert len(parts) > 1 and all(len(part.text()) <= 8_000 for part in parts)
    assert sum(len(part.hunks[0].lines) for part in parts) == LINES  # no line lost or doubled
    per_piece = math.ceil(math.log2(LINES)) + 3
    assert len(calls) <= len(parts) * per_piece + 2 * len(parts), (len(calls), len(parts))
    assert len(calls) < LINES // 10


def test_the_pieces_keep_their_line_numbers():
    parts = split_diff(parse_file_diff(_one_big_hunk()), lambda text: len(text) <= 8_000)
    starts = [part.hunks[0].new_start for part in parts]
    sizes = [len(part.hunks[0].lines) for part in parts]
    assert starts[0] == 1
    assert all(starts[n + 1] == starts[n] + sizes[n] for n in range(len(parts) - 1))
