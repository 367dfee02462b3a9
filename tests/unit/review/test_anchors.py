"""Comments anchored by the code they quote, and the chunk schema that asks for it first."""

from __future__ import annotations

import pytest

from llm_worker.review.anchors import anchor_comments
from llm_worker.review.diff import parse_file_diff
from llm_worker.review.schemas import CommentAnswer, chunk_answer_schema

pytestmark = pytest.mark.unit

DIFF = parse_file_diff(
    "--- a/a.py\n+++ b/a.py\n@@ -1,3 +1,5 @@\n def f(x):\n-    return x\n"
    "+    y = x\n+    return y\n+\n+    return y\n+    return y or x_default\n"
)


def _answer(**comment):
    base = {"path": "a.py", "severity": "error", "body": "bug"}
    return CommentAnswer.model_validate({"action": "comment", "comments": [{**base, **comment}]})


@pytest.mark.parametrize(
    ("comment", "line", "end_line"),
    [
        ({"code": "y = x", "line": 1}, 2, None),  # the quoted code's line wins
        ({"code": "return y", "line": 4}, 3, None),  # nearest of two equal lines
        ({"code": "return y", "line": 5}, 5, None),  # already on a matching line
        ({"code": "nowhere()", "line": 4}, 4, None),  # no match: the number stands
        ({"code": "def f(x", "line": 4}, 4, None),  # too short to match a line's start
        ({"code": "return y or", "line": 1}, 6, None),  # a cut-short quote: a line's start
        ({"code": "    y = x", "line": 3}, 2, None),  # indentation does not count
        ({"line": 1}, 1, None),  # no code quoted
        ({"code": "y = x", "line": 1, "end_line": 3}, 2, 4),  # a range moves with its start
        ({"code": "return y", "line": 1, "end_line": 5}, 3, None),  # ...or ends if it leaves
    ],
)
def test_anchor_moves_a_comment_to_the_line_of_its_code(comment, line, end_line):
    [anchored] = anchor_comments(_answer(**comment), DIFF).comments

    assert (anchored.line, anchored.end_line) == (line, end_line)


def test_chunk_schema_asks_for_the_code_before_the_line_and_only_shown_code():
    schema = chunk_answer_schema(
        tools_allowed=False,
        path="a.py",
        lines=DIFF.new_lines(),
        code=DIFF.new_side_code().values(),
    )
    comment = schema["$defs"]["ReviewComment"]

    assert list(comment["properties"])[:3] == ["path", "code", "line"]
    assert comment["properties"]["code"]["enum"] == [
        "def f(x):",
        "return y",
        "return y or x_default",
        "y = x",
    ]
    assert comment["required"][:3] == ["path", "code", "line"]
