"""``llm-worker eval``: labelled cases through the real worker path, scored per job.

Each case goes through what a worker does (the job's prompt profile, its result
schema, the configured provider, the defensive parsing and the actors' own
post-processing: task-match and event thresholds), against whatever LLM the
settings point at.  Per case file (the bundled ``dev`` and ``test`` splits, or
a user's own) and job it reports the share of schema-valid answers, accuracy
against the labels, the accuracy of always giving the most common label (the
baseline), for emails the share of expected events found with the right start,
latency p50/p95 once the prompt's shared prefix is cached (and the first,
uncached call), and tokens per call.  Review cases are chunks with one known
bug, asked for their final answer (no tool calls): right when a comment covers
the bug's line.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import ValidationError

from llm_worker.errors import InvalidLLMResponse, LLMUnavailable
from llm_worker.jobs.job import Job, LLMRequest
from llm_worker.jobs.registry import job_type as declared_job_type
from llm_worker.llm.json_extract import extract_json_object, parse_answer
from llm_worker.review.anchors import anchor_comments
from llm_worker.review.diff import parse_file_diff
from llm_worker.review.loop import ReviewTurn, invalid_comments
from llm_worker.review.schemas import (
    CommentAnswer,
    ReviewArguments,
    ReviewRequestPayload,
    parse_review_answer,
)
from llm_worker.services import Services

from .cases import JOB_TYPES, Case, by_job


def job_names() -> list[str]:
    """The job types a case file may hold, in the order printed."""
    return list(JOB_TYPES)


@dataclass
class Outcome:
    """What one case gave."""

    job_type: str
    label: Any
    where: str = ""
    valid: bool = False
    right: bool = False
    #: For answers with several expected parts (an email's events): how many were right.
    parts_right: int = 0
    parts: int = 0
    answer: Any = None
    error: str | None = None
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class JobReport:
    """The figures of one job type on one case file."""

    split: str
    job_type: str
    labelled: bool
    cases: int
    valid_share: float
    accuracy: float
    baseline: float
    #: Share of expected parts (an email's events) answered right; ``None``: not scored so.
    parts_share: float | None
    latency_p50: float
    latency_p95: float
    #: Seconds of the slowest warm-up call (the prompt's shared prefix not yet cached).
    first_call: float
    prompt_tokens: float
    completion_tokens: float
    outcomes: list[Outcome] = field(default_factory=list)


def _review_request(svc: Services, case: Case) -> LLMRequest:
    """A review chunk's first turn, tools off: the model must comment (or say no issues)."""
    assert isinstance(case.payload, ReviewRequestPayload)
    args = ReviewArguments(
        review_request_id="eval", chunk_id="1", event="REVIEW_REQUEST", payload=case.payload
    )
    turn = ReviewTurn(svc, args, send_git=lambda *a: None, send_review=lambda *a: None)
    return turn.first_request(case.payload, tools_allowed=False)


def _parse(case: Case, text: str) -> Any:
    if declared_job_type(case.job_type) is not None:
        return parse_answer(text, case.result_model)
    try:
        answer = parse_review_answer(extract_json_object(text), tools_allowed=False)
    except ValidationError as exc:
        raise InvalidLLMResponse(f"the answer did not match the schema: {exc}") from None
    assert isinstance(case.payload, ReviewRequestPayload)
    chunk = case.payload.chunk
    if isinstance(answer, CommentAnswer):
        diff = parse_file_diff(chunk.diff)
        answer = anchor_comments(answer, diff)
        shown = diff.new_lines()
        problems = invalid_comments(answer, chunk.path, shown)
        if problems:
            raise InvalidLLMResponse("; ".join(problems))
    return answer


def spread(found: list[Case], limit: int | None) -> list[Case]:
    """``limit`` cases taken evenly across ``found`` (which is grouped by label), or all."""
    if not limit or limit >= len(found):
        return found
    step = len(found) / limit
    return [found[int(i * step)] for i in range(limit)]


def run_case(svc: Services, case: Case, number: int) -> Outcome:
    """Ask the model one case through the worker's own request and parsing.

    Raises:
      LLMUnavailable: when the LLM cannot be reached (the eval stops).
    """
    outcome = Outcome(case.job_type, case.label, case.where)
    started = time.monotonic()
    try:
        declared = declared_job_type(case.job_type)
        if declared is None:  # the review, whose turns are no registered job type
            request = _review_request(svc, case)
        else:
            job = Job(declared, f"eval-{number}", 0, case.payload, svc)
            request = job.request(case.result_model, case.data)
        answer = request.call(svc)
    except InvalidLLMResponse as exc:
        outcome.error = str(exc)
        outcome.seconds = time.monotonic() - started
        return outcome
    outcome.seconds = time.monotonic() - started
    outcome.prompt_tokens = answer.prompt_tokens
    outcome.completion_tokens = answer.completion_tokens
    try:
        result = _parse(case, answer.text)
    except InvalidLLMResponse as exc:
        outcome.error = str(exc)
        outcome.answer = answer.text[:300]
        return outcome
    outcome.valid = True
    outcome.answer = result.model_dump()
    outcome.right = bool(case.score(result))
    if case.parts is not None:
        outcome.parts_right, outcome.parts = case.parts(result)
    return outcome


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _baseline(labelled: bool, labels: list[Any]) -> float:
    """Accuracy of always answering the most common label (none for jobs scored otherwise)."""
    if not labelled or not labels:
        return 0.0
    return Counter(json.dumps(label) for label in labels).most_common(1)[0][1] / len(labels)


def _parts_share(outcomes: list[Outcome]) -> float | None:
    total = sum(o.parts for o in outcomes)
    return sum(o.parts_right for o in outcomes) / total if total else None


def report(
    job_type: str,
    outcomes: list[Outcome],
    *,
    labelled: bool = True,
    split: str = "",
    first_call: float = 0.0,
) -> JobReport:
    """Aggregate one job's outcomes (``labelled``: scored against a label, so a
    majority baseline exists)."""
    n = len(outcomes)
    seconds = [o.seconds for o in outcomes]
    return JobReport(
        split=split,
        job_type=job_type,
        labelled=labelled,
        cases=n,
        valid_share=sum(o.valid for o in outcomes) / n if n else 0.0,
        accuracy=sum(o.right for o in outcomes) / n if n else 0.0,
        baseline=_baseline(labelled, [o.label for o in outcomes]),
        parts_share=_parts_share(outcomes),
        latency_p50=statistics.median(seconds) if seconds else 0.0,
        latency_p95=_percentile(seconds, 0.95),
        first_call=first_call,
        prompt_tokens=statistics.mean(o.prompt_tokens for o in outcomes) if n else 0.0,
        completion_tokens=statistics.mean(o.completion_tokens for o in outcomes) if n else 0.0,
        outcomes=outcomes,
    )


def _warm_up(pool: ThreadPoolExecutor, svc: Services, cases: list[Case]) -> float:
    """Ask ``cases`` once, unscored, so that every server slot has the job's shared prompt
    prefix cached; return the slowest call's seconds."""
    warm = list(pool.map(lambda case: run_case(svc, case, -1), cases))
    return max((o.seconds for o in warm), default=0.0)


def evaluate(
    svc: Services,
    cases: list[Case],
    jobs: Iterable[str],
    *,
    split: str = "",
    limit: int | None = None,
    concurrency: int = 2,
) -> list[JobReport]:
    """Run the ``cases`` of ``jobs`` (``limit`` of each, spread over the file) with
    ``concurrency`` calls in flight, after one warm-up call per call in flight.

    Raises:
      LLMUnavailable: when the LLM cannot be reached.
    """
    grouped = by_job(cases)
    reports = []
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for job_type in jobs:
            if job_type not in grouped:
                continue
            selected = spread(grouped[job_type], limit)
            first_call = _warm_up(pool, svc, selected[:concurrency])
            outcomes = list(
                pool.map(lambda pair: run_case(svc, pair[1], pair[0]), enumerate(selected))
            )
            labelled = all(case.labelled for case in selected)
            reports.append(
                report(job_type, outcomes, labelled=labelled, split=split, first_call=first_call)
            )
    return reports


def render(reports: list[JobReport], model: str, provider: str = "") -> str:
    """The table printed by ``llm-worker eval``."""
    lines = [
        f"model {model}" + (f" via {provider}" if provider else ""),
        "| split | job | cases | schema-valid | accuracy | majority baseline | event starts "
        "| p50 s | p95 s | first call s | prompt tok | completion tok |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        baseline = f"{r.baseline:.2f}" if r.labelled else "n/a"
        parts = f"{r.parts_share:.2f}" if r.parts_share is not None else "n/a"
        lines.append(
            f"| {r.split} | {r.job_type} | {r.cases} | {r.valid_share:.0%} | {r.accuracy:.2f} "
            f"| {baseline} | {parts} | {r.latency_p50:.2f} | {r.latency_p95:.2f} "
            f"| {r.first_call:.2f} | {r.prompt_tokens:.0f} | {r.completion_tokens:.0f} |"
        )
    return "\n".join(lines)


def to_json(reports: list[JobReport], model: str, provider: str = "") -> str:
    """Every figure and outcome as JSON."""
    return json.dumps(
        {"model": model, "provider": provider, "jobs": [asdict(r) for r in reports]}, indent=2
    )


def run_eval(
    svc: Services,
    *,
    splits: dict[str, list[Case]],
    jobs: list[str],
    limit: int | None,
    concurrency: int,
    json_path: str | None,
) -> int:
    """Evaluate the cases of each split (by its name), print one table (and write JSON);
    return the exit status."""
    model = svc.settings.llm_text_model
    provider = svc.provider_choice.name
    reports: list[JobReport] = []
    try:
        for name, cases in splits.items():
            reports += evaluate(svc, cases, jobs, split=name, limit=limit, concurrency=concurrency)
    except LLMUnavailable as exc:
        print(f"llm-worker: the LLM is not answering: {exc}")
        return 2
    print(render(reports, model, provider))
    if json_path:
        with open(json_path, "w", encoding="utf-8") as out:
            out.write(to_json(reports, model, provider))
    return 0
