"""``llm-worker up``: the workers, the scheduler and the dashboard as child processes."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

from llm_worker.errors import CommandError

#: Seconds children get to stop (in-flight jobs finish or go back to the broker).
STOP_TIMEOUT_SECONDS = 90


#: What Dramatiq's ``dramatiq-gevent`` script runs, for an environment that lacks the
#: script next to its interpreter (a virtualenv over system site-packages).
GEVENT_MAIN = (
    "from gevent import monkey; monkey.patch_all()\n"
    "import sys; from dramatiq.cli import main; sys.exit(main())"
)


def worker_command(python: str, *, processes: int, threads: int, gevent: bool) -> list[str]:
    """The worker child's command: ``dramatiq actors``, or with ``gevent`` Dramatiq's
    ``dramatiq-gevent actors`` (``threads`` greenlets per process).

    Raises:
      CommandError: ``gevent`` without the ``gevent`` extra installed.
    """
    arguments = ["actors", "--processes", str(processes), "--threads", str(threads)]
    if not gevent:
        return [python, "-m", "dramatiq", *arguments]
    if importlib.util.find_spec("gevent") is None:
        raise CommandError("--gevent needs the gevent extra: pip install -e '.[gevent]'")
    script = Path(python).parent / "dramatiq-gevent"
    if script.is_file():
        return [python, str(script), *arguments]
    return [python, "-c", GEVENT_MAIN, *arguments]


@dataclass
class Child:
    """One supervised process and the thread copying its output."""

    name: str
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    pump: threading.Thread | None = None


def guarded(command: list[str]) -> list[str]:
    """``command`` run so that it dies with this process, however this process dies
    (:mod:`console.ops.orphan_guard`)."""
    return [sys.executable, "-m", "console.ops.orphan_guard", str(os.getpid()), *command]


@dataclass
class Supervisor:
    """Starts children with prefixed output and stops them together.

    A child that exits on its own is reported and stops the rest; SIGINT and
    SIGTERM stop every child with SIGTERM (and SIGKILL after
    ``STOP_TIMEOUT_SECONDS``).  No child outlives the supervisor: each gets SIGTERM
    when the supervisor dies, even by SIGKILL; and an output that closes (``| tee``
    ended by Ctrl-C) is dropped instead of ending the supervisor before it stopped them.
    """

    children: list[Child]
    out: IO[str] = sys.stdout
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def say(self, text: str) -> None:
        """Print a line of the supervisor's own."""
        self._write(f"[up] {text}\n")

    def _write(self, text: str) -> None:
        """Write to :attr:`out`; once it is closed (a broken pipe), to nowhere."""
        with self._lock:
            try:
                self.out.write(text)
                self.out.flush()
            except (BrokenPipeError, ValueError, OSError):
                self.out = open(os.devnull, "w")  # noqa: SIM115 (kept for the process's life)

    def _pump(self, name: str, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            self._write(f"[{name}] {line}\n")

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self._stopping.is_set():
            self.say(f"{signal.Signals(signum).name}: stopping")
        self._stopping.set()

    def run(self) -> int:
        """Run until a signal or a child's death; return the exit status."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        for child in self.children:
            child.process = subprocess.Popen(
                guarded(child.command),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches only us; we stop the children
            )
            assert child.process.stdout is not None
            child.pump = threading.Thread(
                target=self._pump, args=(child.name, child.process.stdout), daemon=True
            )
            child.pump.start()
            self.say(f"started {child.name} (pid {child.process.pid})")
        status = 0
        while not self._stopping.wait(0.2):
            for child in self.children:
                assert child.process is not None
                code = child.process.poll()
                if code is not None:
                    self.say(f"{child.name} exited with code {code}: stopping the others")
                    status = 1
                    self._stopping.set()
                    break
        self._stop_all()
        return status

    def _stop_all(self) -> None:
        running = [c for c in self.children if c.process and c.process.poll() is None]
        for child in running:
            assert child.process is not None
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{child.name} did not stop in time: killing it")
                child.process.kill()
                child.process.wait()
        for child in self.children:
            if child.pump is not None:
                child.pump.join(timeout=5)
        self.say("stopped")
