"""The labelled set: its splits kept apart from each other and from the prompts' examples,
the case format as the manual shows it, and how an event's start is scored."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from console.evaluation.cases import SPLITS, read_cases, start_matches
from llm_worker.prompts.data import PROFILES
from llm_worker.review.diff import parse_file_diff

ROOT = Path(__file__).resolve().parents[2]


def _normal(text: str) -> str:
    """Lower case, punctuation and repeated spaces gone: near-equal texts compare equal."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _texts(case: dict) -> list[str]:
    """The user content of one case-file line: what must not repeat across sets."""
    given = case["input"]
    if case["job"] == "intent_classify":
        return [given["text"]]
    if case["job"] == "email_extract":
        return [given["body"]]
    if case["job"] == "task_match":
        return [given["content"]]
    if case["job"] == "followup":
        return [given["text"] + " " + (given["context"] or "")]
    code = parse_file_diff(given["diff"]).new_side_code().values()
    return [line for line in code if len(line.strip()) > 20]


def _split(name: str) -> list[dict]:
    return [json.loads(line) for line in SPLITS[name].read_text().splitlines() if line.strip()]


def _example_texts() -> set[str]:
    """Every text shown to a model as a few-shot example, in any profile."""
    shown = set()
    for profile in PROFILES.values():
        for entry in profile.values():
            for example in entry.get("examples", []):
                data = example["data"]
                for key in ("text", "note", "body", "content"):
                    if isinstance(data.get(key), str):
                        shown.add(_normal(data[key]))
                if "diff" in data:
                    code = parse_file_diff(data["diff"]).new_side_code().values()
                    shown |= {_normal(line) for line in code if len(line.strip()) > 20}
    return shown


def test_both_splits_read_and_hold_every_job():
    for name, path in SPLITS.items():
        jobs = {case.job_type for case in read_cases(path)}
        assert jobs == {"intent_classify", "email_extract", "task_match", "followup", "review"}, (
            name
        )


def test_the_test_split_is_large_enough_to_report():
    test = _split("test")
    emails_with_events = [c for c in test if c["job"] == "email_extract" and c["expect"]["events"]]
    notes = [c for c in test if c["job"] == "task_match"]
    task_lists = {json.dumps(c["input"]["open_tasks"], sort_keys=True) for c in notes}
    assert len(emails_with_events) >= 24
    assert len(notes) >= 30 and len(task_lists) >= 5
    assert sum(c["job"] == "intent_classify" for c in test) >= 60
    assert len({c["expect"]["intent"] for c in test if c["job"] == "intent_classify"}) == 5


def test_no_text_is_in_both_splits():
    dev = {_normal(text) for case in _split("dev") for text in _texts(case)}
    test = {_normal(text) for case in _split("test") for text in _texts(case)}
    assert not dev & test


def test_no_example_shown_in_a_prompt_is_in_either_split():
    shown = _example_texts()
    assert len(shown) > 60
    for name in SPLITS:
        cased = {_normal(text) for case in _split(name) for text in _texts(case)}
        assert not cased & shown, name


def test_the_manuals_examples_are_valid_cases(tmp_path):
    page = (ROOT / "docs" / "evaluation.md").read_text()
    [block] = re.findall(r"```jsonl\n(.*?)```", page, re.S)
    path = tmp_path / "manual.jsonl"
    path.write_text(block)
    cases = read_cases(path)
    assert [case.job_type for case in cases] == [
        "intent_classify",
        "email_extract",
        "task_match",
        "followup",
        "review",
    ]


@pytest.mark.parametrize(
    ("expected", "answer", "right"),
    [
        ("2026-11-12", "2026-11-12T10:00:00", True),
        ("2026-11-12", "2026-11-13T00:00:00", False),
        ("2026-11-12T10:00", "2026-11-12T10:00:00", True),
        ("2026-11-12T10:00", "2026-11-12T10:00:00+05:00", True),
        ("2026-11-12T10:00", "2026-11-12T10:30:00", False),
        ("2026-11-12T10:00+01:00", "2026-11-12T09:00:00Z", True),
        ("2026-11-12T10:00+01:00", "2026-11-12T10:00:00Z", False),
        ("2026-11-12T10:00+01:00", "2026-11-12T10:00:00", True),
        ("2026-11-12T10:00Z", "2026-11-12T11:00:00+01:00", True),
        ("2026-11-12T10:00", "not a date", False),
    ],
)
def test_an_event_start_is_scored_by_what_the_expected_one_states(expected, answer, right):
    assert start_matches(expected, answer) is right
