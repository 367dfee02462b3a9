"""Answers and results the tests share: what the fake LLM says, what Core should get.

Treat them as read-only: every test module uses the same objects.
"""

from __future__ import annotations

from typing import Any

#: A valid ``IntentResult``: a task, with confidence.
GOOD_TASK: dict[str, Any] = {"intent": "task", "confidence": 0.9}
#: A valid ``IntentResult``: a reminder, with confidence.
GOOD_REMINDER: dict[str, Any] = {"intent": "reminder", "confidence": 0.9}

#: Three review comments on the changed app.py of :func:`tests.support.make_git_repo`.
COMMENTS: list[dict[str, Any]] = [
    {
        "path": "app.py",
        "line": 5,
        "end_line": 6,
        "severity": "warning",
        "body": "The file is never closed.",
        "suggestion": "with open(path) as handle:",
    },
    {
        "path": "app.py",
        "line": 12,
        "end_line": None,
        "severity": "error",
        "body": "quantity may be missing on old items.",
        "suggestion": None,
    },
    {
        "path": "app.py",
        "line": 17,
        "end_line": None,
        "severity": "info",
        "body": "discount shadows the total function.",
        "suggestion": None,
    },
]
