"""``python -m bench``: run the benchmark scenarios, print a table, write the raw numbers.

Options: ``--quick`` (smaller runs), ``--only NAME`` (repeatable), ``--out FILE``
(default ``bench-results.json``).  Uses the Redis database ``LLMW_BENCH_REDIS_URL``
(default ``redis://127.0.0.1:6379/14``), which it flushes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .capacity import CAPACITY_SCENARIOS
from .harness import BENCH_REDIS_URL, bench_redis
from .scenarios import SCENARIOS as BASE_SCENARIOS
from .scenarios import Bench, Row
from .soak import soak
from .tracing import tracing

SCENARIOS = {**BASE_SCENARIOS, **CAPACITY_SCENARIOS, "soak": soak, "tracing": tracing}


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs (about a minute)")
    parser.add_argument("--only", action="append", help="run only this scenario (repeatable)")
    parser.add_argument("--out", default="bench-results.json", help="where to write raw numbers")
    args = parser.parse_args(argv)

    os.environ["REDIS_URL"] = BENCH_REDIS_URL  # before `actors` is imported
    os.environ.pop("BROKER_URL", None)

    names = args.only or list(SCENARIOS)
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        parser.error(
            f"unknown scenario {', '.join(sorted(unknown))}; one of {', '.join(SCENARIOS)}"
        )
    bench = Bench(quick=args.quick)
    started = time.monotonic()
    try:
        for name in names:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            scenario_started = time.monotonic()
            SCENARIOS[name](bench)
            bench.raw.setdefault("seconds", {})[name] = round(time.monotonic() - scenario_started)
    finally:
        bench_redis().flushdb()
        bench.llm.down()
        bench.core.down()
    print(render(bench.rows))
    print(f"\n(total {time.monotonic() - started:.0f} s; worker logs in {bench.logs})")
    Path(args.out).write_text(
        json.dumps({"rows": [row.__dict__ for row in bench.rows], "raw": bench.raw}, indent=2)
    )
    return 0


def render(rows: list[Row]) -> str:
    """The results as a markdown table."""
    lines = [
        "| scenario | figure | value | baseline | ratio | target |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        baseline = f"{row.baseline:.3g} {row.unit}" if row.baseline is not None else "-"
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "-"
        lines.append(
            f"| {row.scenario} | {row.figure} | {row.value:.3g} {row.unit} | {baseline} | "
            f"{ratio} | {row.target} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
