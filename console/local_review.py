"""``llm-worker review``: the review loop end to end on a local checkout."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dramatiq
from dramatiq.middleware.prometheus import Prometheus

from actors import broker, review_chunk
from gitworker.handlers import declare
from llm_worker import keys
from llm_worker.errors import CommandError
from llm_worker.observability.logs import configure_logging
from llm_worker.review.loop import cancel_review
from llm_worker.review.protocol import GIT_QUEUE, REVIEW_QUEUE, REVIEW_REQUEST
from llm_worker.services import services
from middleware.circuit_breaker import breaker_status


@dataclass(frozen=True)
class FileChunk:
    """One changed file of a diff."""

    path: str
    diff: str


def git_diff(repo: Path, base: str) -> str:
    """The diff of the working tree against ``base``."""
    command = ["git", "-C", str(repo), "diff", "--no-color", "--no-ext-diff", base, "--"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CommandError(f"git diff against {base!r} failed: {done.stderr.strip()}")
    return done.stdout


def file_chunks(diff: str) -> list[FileChunk]:
    """Split a multi-file diff into one chunk per file with hunks (binary files skipped)."""
    chunks: list[FileChunk] = []
    for block in diff.split("\ndiff --git "):
        lines = block.splitlines()
        path = None
        for line in lines:
            if line.startswith("+++ b/"):
                path = line[len("+++ b/") :]
            elif line.startswith("--- a/") and path is None:
                path = line[len("--- a/") :]
        body = [line for line in lines if not line.startswith(("diff --git", "index "))]
        if path and any(line.startswith("@@") for line in lines):
            start = next(i for i, line in enumerate(body) if line.startswith("---"))
            chunks.append(FileChunk(path, "\n".join(body[start:])))
    return chunks


def _language(path: str) -> str | None:
    suffixes = {".py": "python", ".js": "javascript", ".ts": "typescript", ".go": "go"}
    return suffixes.get(Path(path).suffix)


def in_process_worker_setup(broker: Any) -> None:
    """Prepare ``broker`` for a worker in this process, as a worker process's boot would.

    - Reads every setting (an invalid one stops the command with one line).
    - Installs a stderr log handler at WARNING when none is configured, then
      applies ``LOG_FORMAT`` and ``LOG_CONTENT``: messages' arguments (diffs,
      tool arguments) are redacted from every log line.
    - Removes Dramatiq's ``Prometheus`` middleware: its metrics exist only in
      processes the ``dramatiq`` command boots, and this command serves none.
    """
    config = services().settings
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    configure_logging(config)
    broker.middleware[:] = [m for m in broker.middleware if not isinstance(m, Prometheus)]


def pending_messages(broker: Any, worker: Any, queues: list[str]) -> int:
    """Messages of ``queues`` queued, delayed or in flight, as far as can be told
    without blocking (Redis: the broker's counts; any broker: this worker's)."""
    local = worker.work_queue.unfinished_tasks + sum(
        consumer.delay_queue.unfinished_tasks for consumer in list(worker.consumers.values())
    )
    if hasattr(broker, "do_qsize"):
        return local + sum(int(broker.do_qsize(queue)) for queue in queues)
    return local


@dataclass
class ReviewProgress:
    """The results ``post_comment`` stored for one review, printed as they arrive."""

    redis: Any
    key: str
    results: list[dict[str, Any]]

    def poll(self) -> None:
        """Read and print the results stored since the last poll."""
        for raw in self.redis.lrange(self.key, len(self.results), -1):
            result = json.loads(raw)
            self.results.append(result)
            for line in result_lines(result):
                print(line, flush=True)

    @property
    def comments(self) -> int:
        """Comments received so far."""
        return sum(len(r.get("comments") or []) for r in self.results)

    def covers(self, chunk_ids: list[str]) -> bool:
        """Whether every one of ``chunk_ids`` has its result (a chunk split into
        sub-chunks has results under ``{chunk_id}#n`` instead)."""
        done = {str(r.get("chunk_id")) for r in self.results}
        return all(chunk_id in done for chunk_id in chunk_ids)

    @property
    def failures(self) -> list[dict[str, Any]]:
        """Results of chunks that failed."""
        return [r for r in self.results if r.get("error")]


def result_lines(result: dict[str, Any]) -> list[str]:
    """What the command prints for one chunk's result."""
    chunk_id = result.get("chunk_id")
    if result.get("error"):
        return [f"[{chunk_id}] review failed: {result['error']}"]
    comments = result.get("comments") or []
    if not comments:
        return [f"[{chunk_id}] no issues: {result.get('summary')}"]
    return [
        f"[{chunk_id}] {c.get('path')}:{c.get('line')} {c.get('severity')}: {c.get('body')}"
        for c in comments
    ]


def wait_for_review(
    broker: Any,
    worker: Any,
    queues: list[str],
    progress: ReviewProgress,
    chunk_ids: list[str],
    deadline: float,
) -> bool:
    """Print results until every chunk has one, or the queues are idle (``True``), or
    ``deadline`` passes (``False``).

    Never blocks past ``deadline`` (a monotonic time): both are polled.
    """
    quiet = 0
    while quiet < 3:
        progress.poll()
        if progress.covers(chunk_ids):
            return True
        if time.monotonic() >= deadline:
            return False
        quiet = quiet + 1 if pending_messages(broker, worker, queues) == 0 else 0
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
    progress.poll()
    return True


def timeout_reason() -> str:
    """Why a review may not have finished: the breaker's state, when it is open."""
    status = breaker_status()
    if status.is_open:
        return f"the LLM is unavailable (breaker open: {status.last_error})"
    return "the LLM is slow or not answering"


#: Seconds the worker is given to stop once the review ended or timed out.
STOP_GRACE_SECONDS = 2.0


def review_local_diff(*, repo: str, base: str, timeout: float, threads: int) -> int:
    """Review ``repo``'s changes against ``base``; print the comments; return the exit status.

    ``timeout`` bounds the whole command: when it passes, the comments received so
    far are printed with a line saying the review timed out (exit 1); calls still
    running are abandoned and the review is cancelled: its messages left in the
    broker are dropped by whichever worker picks them up, with no LLM call.
    """
    deadline = time.monotonic() + timeout
    root = Path(repo).resolve()
    chunks = file_chunks(git_diff(root, base))
    if not chunks:
        print(f"no changes against {base}")
        return 0
    os.environ["GIT_REPO_PATH"] = str(root)

    in_process_worker_setup(broker)
    svc = services()
    declare(broker)
    queues = [REVIEW_QUEUE, GIT_QUEUE]
    worker = dramatiq.Worker(broker, queues=set(queues), worker_threads=threads)
    worker.start()
    review_id = f"local-{uuid.uuid4().hex[:12]}"
    progress = ReviewProgress(
        svc.redis, keys.review_comments(svc.settings.key_prefix, review_id), []
    )
    chunk_ids = [str(n) for n in range(1, len(chunks) + 1)]
    try:
        for n, chunk in enumerate(chunks, start=1):
            payload = {
                "repo": root.name,
                "title": f"local changes against {base}",
                "chunk": {
                    "path": chunk.path,
                    "diff": chunk.diff,
                    "language": _language(chunk.path),
                },
            }
            review_chunk.send(review_id, str(n), REVIEW_REQUEST, payload)
        finished = wait_for_review(broker, worker, queues, progress, chunk_ids, deadline)
    finally:
        worker.stop(timeout=int(STOP_GRACE_SECONDS * 1000))
    progress.poll()
    summary = f"{progress.comments} comments on {len(chunks)} files"
    if not finished:
        cancel_review(svc, review_id)  # what is left in the shared queues is dropped
        print(
            f"review {review_id}: timed out after {timeout:g}s with {summary} "
            f"({len(progress.results)} chunk results): {timeout_reason()}",
            flush=True,
        )
        return 1
    print(f"review {review_id}: {summary}", flush=True)
    return 1 if progress.failures else 0
