"""Running real ``dramatiq`` worker processes against fake servers, and measuring them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from llm_worker.broker.redis_layout import RedisLayout

ROOT = Path(__file__).resolve().parent.parent
#: The benchmarks' own Redis database; it is flushed.
BENCH_REDIS_URL = os.environ.get("LLMW_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def bench_redis() -> redis.Redis:
    """A client of the benchmarks' Redis database."""
    if BENCH_REDIS_URL.rstrip("/").endswith("/0"):
        raise SystemExit("LLMW_BENCH_REDIS_URL must not be Redis database 0")
    return redis.Redis.from_url(BENCH_REDIS_URL)


def children_of(pid: int) -> list[int]:
    """Direct child process ids of ``pid`` (Linux ``/proc``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU seconds used so far by ``pids``."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def rss_megabytes(pids: list[int]) -> float:
    """Resident memory of ``pids``, in MB."""
    total_kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


@dataclass
class Workers:
    """A running ``dramatiq`` CLI and its worker processes."""

    process: subprocess.Popen[bytes]
    pids: list[int]

    def cpu(self) -> float:
        """CPU seconds used by the worker processes so far."""
        return cpu_seconds(self.pids)

    def rss(self) -> float:
        """Resident memory of the worker processes, in MB."""
        return rss_megabytes(self.pids)


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``predicate`` every 10 ms; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise TimeoutError(f"timed out waiting for {what}")


@contextmanager
def run_workers(
    module: str,
    *,
    processes: int,
    threads: int,
    env: dict[str, str],
    log: Path,
    queues: tuple[str, ...] = (),
    gevent: bool = False,
) -> Iterator[Workers]:
    """Start ``dramatiq MODULE`` (``dramatiq-gevent`` with ``gevent``; on ``queues``
    only, if given) and wait until every worker process is ready."""
    from console.ops.supervisor import worker_command

    layout = RedisLayout(bench_redis())  # the actors' broker keeps Dramatiq's namespace
    before = layout.worker_count()
    command = worker_command(sys.executable, processes=1, threads=1, gevent=gevent)
    launcher = command[: command.index("actors")]
    queue_args = ["--queues", *queues] if queues else []
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *launcher,
                module,
                "--processes",
                str(processes),
                "--threads",
                str(threads),
                *queue_args,
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(
                lambda: layout.worker_count() >= before + processes,
                180,  # a loaded machine can take a minute to import and boot them
                f"{module} workers to start (see {log})",
            )
            yield Workers(process, children_of(process.pid))
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            layout.client.delete(layout.heartbeats_key)


def pending(client: redis.Redis, queue: str) -> int:
    """Messages of ``queue`` not yet acknowledged (queued, delayed or in flight)."""
    return RedisLayout(client).unacknowledged_count(queue)


def median(values: list[float]) -> float:
    """The median of ``values``."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def percentile(values: list[float], share: float) -> float:
    """The ``share`` (0..1) percentile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]
