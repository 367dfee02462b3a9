"""The soak: tens of thousands of jobs, and what the service keeps in Redis as they pass.

Every structure the service writes has a bound (a stream trimmed, keys with a TTL, hashes
swept), so once the bounds are reached the bench database stops growing however many
more jobs go through.  The run shrinks the bounds that are times (result, notification
and finished-marker TTLs of 20 s) so a short run reaches them, and measures the keys and
their memory after each batch: the last batch's figures against the middle one's.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from .harness import bench_redis, pending, run_workers, wait_until
from .scenarios import GOOD, Bench, Row

#: The bounds that are times, shrunk so that the run reaches them.
TTL_SECONDS = 20
#: The notification stream's bound (its smallest allowed value).
STREAM_ENTRIES = 1_000


def redis_footprint(client: redis.Redis) -> dict[str, int]:
    """The bench database's key count, stream length and bytes (``MEMORY USAGE`` of every
    key, sampled exactly)."""
    keys = 0
    used = 0
    for key in client.scan_iter(count=1_000):
        keys += 1
        used += int(client.memory_usage(key, samples=0) or 0)
    return {"keys": keys, "bytes": used, "stream": int(client.xlen("notify:telegram"))}


def soak(bench: Bench) -> None:
    """Jobs in batches, past every bound: the bench database's keys and bytes stay flat."""
    from actors import intent_classify

    batches, per_batch = (6, 1_000) if bench.quick else (10, 2_000)
    bench.reset()
    bench.llm.answers["IntentResult"] = GOOD
    client = bench_redis()
    footprints: list[dict[str, Any]] = []
    env = bench.env(
        LLM_TOKENIZER="estimate",
        NOTIFY_STREAM_MAX_ENTRIES=str(STREAM_ENTRIES),
        NOTIFY_DEDUPE_SECONDS=str(TTL_SECONDS),
        JOB_RESULT_TTL_SECONDS=str(TTL_SECONDS),
    )
    with run_workers(
        "actors",
        processes=3,
        threads=8,
        env=env,
        log=bench.logs / "soak.log",
        queues=("llm.intent",),
    ):
        job_id = 0
        for batch in range(batches):
            started = time.monotonic()
            for _ in range(per_batch):
                intent_classify.send(job_id, 42, {"text": "remind me to call mum at 6"})
                job_id += 1
            wait_until(lambda: pending(client, "llm.intent") == 0, 600, "the soak batch")
            # Past the TTLs before the next batch: what a batch left behind has gone.
            time.sleep(max(0.0, TTL_SECONDS + 2 - (time.monotonic() - started)))
            footprints.append({"batch": batch, "jobs": job_id, **redis_footprint(client)})
    bench.raw["soak"] = footprints
    middle, last = footprints[len(footprints) // 2], footprints[-1]
    for figure, unit in (("keys", "keys"), ("bytes", "bytes")):
        bench.rows.append(
            Row(
                "soak",
                f"bench Redis {figure} after {last['jobs']:,} jobs (vs after {middle['jobs']:,})",
                float(last[figure]),
                float(middle[figure]) or None,
                unit,
                "flat: ratio about 1",
            )
        )
    bench.rows.append(
        Row("soak", "notification stream entries", float(last["stream"]), None, "entries")
    )
