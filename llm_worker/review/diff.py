"""Unified diffs of one file: hunks, new-side line numbers, and splitting by size."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")


@dataclass(frozen=True)
class Hunk:
    """One ``@@`` hunk: where it starts on each side and its body lines."""

    old_start: int
    new_start: int
    lines: tuple[str, ...]
    section: str = ""

    @property
    def old_count(self) -> int:
        """Lines of the old side the hunk covers."""
        return sum(1 for line in self.lines if not line.startswith(("+", "\\")))

    @property
    def new_count(self) -> int:
        """Lines of the new side the hunk covers."""
        return sum(1 for line in self.lines if not line.startswith(("-", "\\")))

    def header(self) -> str:
        """The ``@@ -a,b +c,d @@`` line."""
        return (
            f"@@ -{self.old_start},{self.old_count} +{self.new_start},{self.new_count} @@"
            f"{self.section}"
        )

    def text(self) -> str:
        """The hunk as diff text."""
        return "\n".join((self.header(), *self.lines))

    def numbered_lines(self) -> list[tuple[int | None, str]]:
        """Each body line with its new-side number (``None`` for removed lines)."""
        numbered: list[tuple[int | None, str]] = []
        line_no = self.new_start
        for line in self.lines:
            if line.startswith(("-", "\\")):
                numbered.append((None, line))
                continue
            numbered.append((line_no, line))
            line_no += 1
        return numbered

    def new_lines(self) -> set[int]:
        """Line numbers of the new side shown in this hunk (added and context lines)."""
        numbers: set[int] = set()
        line_no = self.new_start
        for line in self.lines:
            if line.startswith(("-", "\\")):
                continue
            numbers.add(line_no)
            line_no += 1
        return numbers


@dataclass(frozen=True)
class FileDiff:
    """The diff of one file: its header lines (``---``/``+++``...) and hunks."""

    header: tuple[str, ...]
    hunks: tuple[Hunk, ...]

    def text(self) -> str:
        """The diff as text."""
        return "\n".join((*self.header, *(hunk.text() for hunk in self.hunks)))

    def new_lines(self) -> set[int]:
        """Every new-side line number the diff shows."""
        return set().union(*(hunk.new_lines() for hunk in self.hunks)) if self.hunks else set()

    def new_side_code(self) -> dict[int, str]:
        """Each new-side line's code (without its ``+``/space marker), by line number."""
        return {
            number: line[1:]
            for hunk in self.hunks
            for number, line in hunk.numbered_lines()
            if number is not None
        }

    def added_code(self) -> dict[int, str]:
        """Each added (``+``) line's code, by new-side line number."""
        return {
            number: line[1:]
            for hunk in self.hunks
            for number, line in hunk.numbered_lines()
            if number is not None and line.startswith("+")
        }

    def numbered_text(self) -> str:
        """The diff as the model is shown it: each new-side line starts with its number
        (``12 +    total = price * qty``), removed lines with blanks of the same width."""
        width = len(str(max(self.new_lines(), default=0)))
        out = list(self.header)
        for hunk in self.hunks:
            out.append(hunk.header())
            for number, line in hunk.numbered_lines():
                out.append(f"{'' if number is None else number:>{width}} {line}")
        return "\n".join(out)


def parse_file_diff(text: str) -> FileDiff:
    """Parse the unified diff of one file.

    Raises:
      ValueError: when the text contains no hunk.
    """
    header: list[str] = []
    hunks: list[Hunk] = []
    current: tuple[int, int, str] | None = None
    body: list[str] = []
    for line in text.splitlines():
        match = _HUNK.match(line)
        if match:
            if current is not None:
                hunks.append(Hunk(current[0], current[1], tuple(body), current[2]))
            current = (int(match.group(1)), int(match.group(3)), match.group(5))
            body = []
        elif current is None:
            header.append(line)
        else:
            body.append(line)
    if current is not None:
        hunks.append(Hunk(current[0], current[1], tuple(body), current[2]))
    if not hunks:
        raise ValueError("the diff contains no hunk (@@ ... @@)")
    return FileDiff(tuple(header), tuple(hunks))


def _split_hunk(hunk: Hunk, fits: Callable[[str], bool]) -> list[Hunk]:
    """Cut one hunk into consecutive pieces that each fit, with correct headers.

    Each piece is the longest run of lines from where the last one ended that fits,
    found by bisection: about ``log2(lines)`` calls of ``fits`` a piece, not one a line
    (each call may count a whole prompt's tokens).  A line that does not fit on its own
    still forms its own piece.
    """
    starts: list[tuple[int, int]] = []  # (old, new) line numbers where each line starts
    old_no, new_no = hunk.old_start, hunk.new_start
    for line in hunk.lines:
        starts.append((old_no, new_no))
        if not line.startswith(("+", "\\")):
            old_no += 1
        if not line.startswith(("-", "\\")):
            new_no += 1

    def piece(first: int, end: int) -> Hunk:
        old_start, new_start = starts[first]
        return Hunk(old_start, new_start, hunk.lines[first:end], hunk.section)

    pieces: list[Hunk] = []
    first, count = 0, len(hunk.lines)
    while first < count:
        low, high = first + 1, count  # piece(first, low) always goes in, fitting or not
        while low < high:
            middle = (low + high + 1) // 2
            if fits(piece(first, middle).text()):
                low = middle
            else:
                high = middle - 1
        pieces.append(piece(first, low))
        first = low
    return pieces


def split_diff(diff: FileDiff, fits: Callable[[str], bool]) -> list[FileDiff]:
    """Split a file's diff into sub-diffs that each satisfy ``fits``.

    Whole hunks are grouped while they fit; a hunk too large on its own is
    cut into pieces of consecutive lines.  A single line that does not fit
    still forms its own piece.
    """
    groups: list[list[Hunk]] = []
    for hunk in diff.hunks:
        for piece in (
            [hunk]
            if fits(FileDiff(diff.header, (hunk,)).text())
            else _split_hunk(hunk, lambda text: fits("\n".join((*diff.header, text))))
        ):
            if groups and fits(FileDiff(diff.header, (*groups[-1], piece)).text()):
                groups[-1].append(piece)
            else:
                groups.append([piece])
    return [FileDiff(diff.header, tuple(group)) for group in groups]
