"""``llm-worker review``: the review loop end to end on a local checkout."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CommandError


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


def _wait_until_idle(broker: Any, worker: Any, queues: list[str], deadline: float) -> None:
    """Wait until the review and git queues are empty and the worker is idle."""
    quiet = 0
    while quiet < 2:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CommandError("the review did not finish in time (is the LLM answering?)")
        for queue in queues:
            broker.join(queue, timeout=int(remaining * 1000))
        worker.join()
        sizes = [broker.do_qsize(q) if hasattr(broker, "do_qsize") else 0 for q in queues]
        quiet = quiet + 1 if not any(sizes) else 0
        time.sleep(0.2)


def review_local_diff(*, repo: str, base: str, timeout: float, threads: int) -> int:
    """Review ``repo``'s changes against ``base``; print the comments; return the exit status."""
    root = Path(repo).resolve()
    chunks = file_chunks(git_diff(root, base))
    if not chunks:
        print(f"no changes against {base}")
        return 0
    os.environ["GIT_REPO_PATH"] = str(root)

    import dramatiq

    from actors import broker, review_chunk
    from gitworker.handlers import GIT_QUEUE, comments_key, declare

    from .services import services

    svc = services()
    declare(broker)
    worker = dramatiq.Worker(broker, queues={"llm.review", GIT_QUEUE}, worker_threads=threads)
    worker.start()
    review_id = f"local-{uuid.uuid4().hex[:12]}"
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
            review_chunk.send(review_id, str(n), "REVIEW_REQUEST", payload)
        _wait_until_idle(broker, worker, ["llm.review", GIT_QUEUE], time.monotonic() + timeout)
    finally:
        worker.stop()
    results = [json.loads(r) for r in svc.redis.lrange(comments_key(review_id), 0, -1)]
    comments = sum(len(r["comments"]) for r in results)
    failures = [r for r in results if r.get("error")]
    print(f"review {review_id}: {comments} comments on {len(chunks)} files", flush=True)
    return 1 if failures else 0
