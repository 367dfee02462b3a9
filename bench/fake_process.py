"""The fake LLM in a process of its own: ``python -m bench.fake_process --latency 8``.

It answers every chat completion with a valid intent after ``--latency`` seconds,
prints its port on the first line of stdout, and serves until stdin closes.  A
separate process keeps the LLM's threads and CPU out of the benchmark's own
process (which also runs the fake Core and the producer).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from llm_worker.testing.fakes import FakeLLM, Reply

GOOD = {"intent": "reminder", "confidence": 0.9}


@dataclass
class LLMProcess:
    """A running fake LLM process."""

    process: subprocess.Popen[str]
    port: int

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible ``/v1`` URL."""
        return f"http://127.0.0.1:{self.port}/v1"


@contextmanager
def llm_process(latency: float) -> Iterator[LLMProcess]:
    """Run the fake LLM in its own process for the ``with`` block."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.fake_process", "--latency", str(latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield LLMProcess(process, int(process.stdout.readline()))
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> int:
    """Serve until stdin closes."""
    parser = argparse.ArgumentParser(prog="python -m bench.fake_process")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    args = parser.parse_args(argv)
    llm = FakeLLM()

    def answer(request: dict[str, Any]) -> Reply:
        return Reply(content=GOOD, delay=args.latency)

    llm.fallback = answer
    print(llm.port, flush=True)
    sys.stdin.read()
    llm.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
