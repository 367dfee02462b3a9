"""Anchoring a comment by the code it quotes: the line whose code the model copied wins
over the number it wrote, which small models often get wrong."""

from __future__ import annotations

from llm_worker.review.diff import FileDiff
from llm_worker.review.schemas import CommentAnswer, ReviewComment

#: Shortest quote matched as the start of a line's code.  The engine can end a quoted string
#: early when the code holds both ``'`` and ``"`` (seen with LLGuidance's enum strings).
MIN_PREFIX = 8


def _anchored(comment: ReviewComment, code_by_line: dict[int, str]) -> ReviewComment:
    if not comment.code or not comment.code.strip():
        return comment
    quoted = comment.code.strip()
    matches = [n for n, code in code_by_line.items() if code.strip() == quoted]
    if not matches and len(quoted) >= MIN_PREFIX:
        matches = [n for n, code in code_by_line.items() if code.strip().startswith(quoted)]
    if not matches or comment.line in matches:
        return comment
    line = min(matches, key=lambda n: (abs(n - comment.line), n))
    end_line = comment.end_line
    if end_line is not None:
        end_line = end_line + line - comment.line
        if end_line not in code_by_line or end_line <= line:
            end_line = None
    return comment.model_copy(update={"line": line, "end_line": end_line})


def anchor_comments(answer: CommentAnswer, diff: FileDiff) -> CommentAnswer:
    """``answer`` with each comment moved to the new-side line whose code it quotes (the
    nearest such line to the one it names; a quote of at least :data:`MIN_PREFIX` characters
    that matches no line whole may match a line's start; unchanged when the code is on the
    named line, or on none: then the number is checked as written).  A range moves with
    its start."""
    code_by_line = diff.new_side_code()
    comments = [_anchored(comment, code_by_line) for comment in answer.comments]
    return answer.model_copy(update={"comments": comments})
