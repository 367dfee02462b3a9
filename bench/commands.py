"""Scenario 11: how fast the operator's commands and a producer's import start.

Each command runs in a fresh interpreter, as an operator or a producer would
run it; its wall time is the median of several runs, compared with ``python -c
pass`` (the interpreter's own start-up) in the same run. It also checks that a
producer's ``import actors`` loads no LLM SDK.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from .harness import median

if TYPE_CHECKING:
    from .scenarios import Bench

#: Target wall time of ``status``, ``send`` and ``--help``, in seconds.
TARGET_SECONDS = 1.5

#: Modules of the LLM SDKs a producer must not import.
SDK_MODULES = ("openai", "anthropic")

PRODUCER_IMPORT = (
    "import sys, actors; "
    f"loaded = [m for m in {SDK_MODULES!r} if m in sys.modules]; "
    "print(','.join(loaded))"
)


def _walls(
    commands: dict[str, list[str]], env: dict[str, str], runs: int
) -> dict[str, list[float]]:
    """Wall times of each command, ``runs`` rounds of one run each: interleaved, so a
    busy machine slows every command alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            started = time.monotonic()
            subprocess.run(command, env=env, capture_output=True, check=False, timeout=120)
            times[name].append(round(time.monotonic() - started, 4))
    return times


def commands(bench: Bench) -> None:
    """Wall time of ``python -c pass``, ``import actors``, ``llm-worker --help``,
    ``status`` and ``send`` (no ``--wait``), as ratios against the first."""
    from .scenarios import Row

    bench.reset()
    env = {**os.environ, **bench.env(METRICS_ENABLED="false")}
    runs = 3 if bench.quick else 7
    python = sys.executable
    cli = [python, "-m", "console.cli"]
    send = [
        *cli,
        "send",
        "intent_classify",
        "--job-id",
        "1",
        "--user-id",
        "42",
        "--payload",
        '{"text": "remind me to call mum at 6"}',
    ]
    subprocess.run([*cli, "status"], env=env, capture_output=True, timeout=120)  # warm up
    times = _walls(
        {
            "python -c pass": [python, "-c", "pass"],
            "producer `import actors`": [python, "-c", "import actors"],
            "llm-worker --help": [*cli, "--help"],
            "llm-worker status": [*cli, "status"],
            "llm-worker send": send,
        },
        env,
        runs,
    )
    raw: dict[str, object] = dict(times)
    baseline = median(times.pop("python -c pass"))
    scenario = "11. command start-up (fresh process)"
    for figure, walls in times.items():
        target = "" if figure.startswith("producer") else f"< {TARGET_SECONDS} s"
        bench.rows.append(
            Row(scenario, f"{figure} vs `python -c pass`", median(walls), baseline, "s", target)
        )
    loaded = subprocess.run(
        [python, "-c", PRODUCER_IMPORT], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    raw["LLM SDKs loaded by import actors"] = loaded
    count = float(len([m for m in loaded.split(",") if m]))
    bench.rows.append(Row(scenario, "LLM SDKs loaded by `import actors`", count, None, "", "0"))
    bench.raw["commands"] = raw
    bench.reset()
