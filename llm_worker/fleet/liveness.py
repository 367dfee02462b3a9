"""Liveness files: each worker process proves every few seconds that it still runs.

A worker process writes the time into ``LIVENESS_DIR/worker-{pid}`` when it
boots and every :data:`BEAT_INTERVAL_SECONDS` after, and removes it when it
stops. ``llm-worker health`` (a container's liveness check) passes while every
running worker process's file is fresh: it says nothing about the LLM, Redis or
Core, whose outages a restart would not cure.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

#: Seconds between two beats of a worker process.
BEAT_INTERVAL_SECONDS = 5.0

#: A file older than this (three missed beats) means its process is stuck.
STALE_AFTER_SECONDS = 3 * BEAT_INTERVAL_SECONDS


def beat_file(folder: Path, pid: int | None = None) -> Path:
    """The liveness file of process ``pid`` (default: this one)."""
    return folder / f"worker-{os.getpid() if pid is None else pid}"


def beat(folder: Path) -> None:
    """Write this process's liveness file (atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = beat_file(folder)
    scratch = target.with_suffix(".tmp")
    scratch.write_text(f"{time.time():.3f}\n")
    scratch.replace(target)


def forget(folder: Path) -> None:
    """Remove this process's liveness file (it stops on purpose)."""
    beat_file(folder).unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process of that pid: it runs
        return True
    return True


@dataclass(frozen=True)
class Liveness:
    """What the liveness files say: fresh and stuck worker processes (by pid)."""

    fresh: list[int]
    stuck: list[int]

    @property
    def alive(self) -> bool:
        """At least one worker process beats and none is stuck."""
        return bool(self.fresh) and not self.stuck


def read_liveness(folder: Path, *, stale_after: float = STALE_AFTER_SECONDS) -> Liveness:
    """Sort the running processes' files into fresh and stuck; files of processes that
    are gone (killed, or of an earlier container run) are ignored."""
    fresh: list[int] = []
    stuck: list[int] = []
    now = time.time()
    for path in sorted(folder.glob("worker-*")) if folder.is_dir() else []:
        try:
            pid = int(path.name.removeprefix("worker-"))
            written = float(path.read_text().strip() or 0)
        except (OSError, ValueError):
            continue
        if not _running(pid):
            continue
        (fresh if now - written <= stale_after else stuck).append(pid)
    return Liveness(fresh, stuck)
