"""``python -m bench.fleet``: a fleet of worker hosts under network faults, every job counted.

Hosts are network namespaces on one private switch (:mod:`bench.netns`): Redis (a
``redis-server`` of the run's own, AOF on), the fake LLM, the fake Core, the producer, and
three worker hosts each running ``dramatiq actors --processes 1 --threads 8``.  Faults: a
worker host's link cut (partition), its processes frozen (``SIGSTOP``) or killed at once
with its link cut (power off), its link flapping.  This kernel has no ``netem``, so a lossy
link is its link set down and up every one to two seconds.

Scenarios (``--only NAME``, repeatable; ``--quick`` for shorter faults and fewer jobs;
``--fault-seconds`` sets the length of the faults of scenarios 2 to 4):

1. ``cap``: the fleet-wide cap of 8 over three hosts against an LLM that answers 429 above
   8 in flight; then the LLM down (503): probes across all hosts, recovery.
2. ``partition``: a worker host cut off for 30 s (15 s quick) under load (1 s LLM).
3. ``power-off``: a host's processes SIGKILLed with its link cut; ``freeze``: a host's
   processes stopped for 30 s (15 s quick), then resumed.
4. ``flap``: a host's link down and up every 1 to 2 s for 30 s (15 s quick).
5. ``sentinel``: Redis behind Sentinel (:mod:`bench.fleet_sentinel`: a primary, its
   replica, three sentinels on hosts of their own), the primary's host powered off under
   load (1 s LLM); ``sentinel-stock``: the same failover under Dramatiq's own
   ``RedisBroker`` on a redis-py Sentinel client (:mod:`bench.fleet_stock`), for comparison.

Each scenario counts every job (completed, failed, skipped, expired, lost, doubled) from
what the fake Core and the fake LLM recorded and the notification stream holds, and
prints one table.  Everything the run makes (namespaces, veths, processes, Redis data) is
removed at its end, on Ctrl-C or an error too; ``--clean`` removes what a crashed run
left.  Logs stay in ``--logs`` (a new temporary folder by default).  Needs root.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import redis

from .fleet_agent import STOCK_QUEUE
from .fleet_cluster import QUEUE, WORKER_HOSTS, Accounting, Fleet, Sample, account
from .fleet_sentinel import DOWN_AFTER_MS, SentinelSet
from .netns import clean_leftovers

#: Settings of every worker host (each scenario may change some).
BASE_SETTINGS = {
    "LLM_MAX_CONCURRENT_REQUESTS": "8",
    "LLM_SLOT_LEASE_SECONDS": "10",
    "LLM_PROBE_INTERVAL_SECONDS": "5",
    "BROKER_HEARTBEAT_TIMEOUT_SECONDS": "10",
    "BROKER_RECOVERY_INTERVAL_SECONDS": "2",
    "LLM_TIMEOUT_SECONDS": "20",
    "CORE_TIMEOUT_SECONDS": "5",
    "REDIS_SOCKET_TIMEOUT_SECONDS": "5",
    "JOB_RETRY_MIN_BACKOFF_SECONDS": "1",
    "JOB_RETRY_MAX_BACKOFF_SECONDS": "10",
}
#: Slots the fleet may use, and above which the fake LLM answers 429 in scenario 1.
CAP = 8
#: A job that waited longer than this on another delivery's job lease is reported.
LEASE_WAIT_SECONDS = 30.0
#: A longer fault gets no more jobs than this one: the backlog runs out during it.
MAX_LOADED_FAULT = 30.0
#: Longest wait for every job of a scenario to end, in seconds.
FINAL_TIMEOUT = 300.0


@dataclass
class Check:
    """One target of a scenario, met or not."""

    what: str
    ok: bool
    detail: str


@dataclass
class Outcome:
    """What one scenario measured."""

    scenario: str
    accounting: Accounting | None = None
    times: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def check(self, what: str, ok: bool, detail: str) -> None:
        """Record whether a target was met."""
        self.checks.append(Check(what, ok, detail))

    def check_jobs(self) -> None:
        """The targets every scenario has: none lost, none doubled, one notification each."""
        a = self.accounting
        assert a is not None
        self.check("no job lost", not a.lost, f"{len(a.lost)} without a state in Core {a.lost[:5]}")
        self.check(
            "one notification per job",
            not a.no_notification and not a.double_notification,
            f"{len(a.no_notification)} without, {len(a.double_notification)} with two or more",
        )
        self.check(
            "no second LLM answer for a job after one reached a host",
            not a.recalled_after_acknowledged,
            f"{len(a.recalled_after_acknowledged)} jobs {a.recalled_after_acknowledged[:5]} "
            f"({len(a.recalled)} answered twice in all)",
        )
        self.check(
            "one result and one final state per job in Core",
            not a.two_results and not a.conflicting_states,
            f"{len(a.two_results)} with two results, "
            f"{len(a.conflicting_states)} with two states {a.conflicting_states[:5]}",
        )


@dataclass
class Run:
    """One harness run: the fleet, the mode, the outcomes."""

    fleet: Fleet
    quick: bool
    logs: Path
    outcomes: list[Outcome] = field(default_factory=list)
    next_job: int = 1
    #: Seconds of each fault of scenarios 2 to 4 (``None``: 30, 15 with ``quick``).
    fault_seconds: float | None = None

    def timing(self) -> tuple[float, float]:
        """Seconds of warm-up and of the fault."""
        warm = 6.0 if self.quick else 10.0
        default = 15.0 if self.quick else 30.0
        return warm, self.fault_seconds if self.fault_seconds is not None else default

    def job_ids(self, count: int) -> list[int]:
        """``count`` job ids never used in this run."""
        ids = list(range(self.next_job, self.next_job + count))
        self.next_job += count
        return ids

    def settings(self, **changes: str) -> dict[str, str]:
        """:data:`BASE_SETTINGS` with ``changes``."""
        return {**BASE_SETTINGS, **changes}

    def start(self, label: str, settings: dict[str, str], *, latency: float, limit: int) -> None:
        """A fresh Redis and fakes, the LLM's latency and limit set, the workers started."""
        self.fleet.reset()
        self.fleet.llm.call("set", latency=latency, limit=limit, mode="up")
        self.fleet.start_workers(label, settings)
        self.fleet.observe()

    def finish(self, outcome: Outcome, job_ids: list[int]) -> tuple[list[Any], list[Any]]:
        """Stop watching and the workers, count the jobs; the LLM's and Core's records."""
        self.fleet.stop_observing()
        llm = self.fleet.llm.call("stats")["records"]
        core = self.fleet.core.call("stats")["records"]
        outcome.accounting = account(
            job_ids, llm, core, self.fleet.notifications(), self.fleet.host_of
        )
        outcome.check_jobs()
        self.fleet.stop_workers()
        return llm, core


# -- measures ------------------------------------------------------------------------------


def first_completions(core: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each job's first ``completed`` report to Core."""
    found: dict[str, dict[str, Any]] = {}
    for record in sorted(core, key=lambda r: r["at"]):
        if record["status"] == "completed":
            found.setdefault(record["job"], record)
    return found


def rate(times: list[float], start: float, end: float) -> float:
    """Events per second of ``times`` within ``[start, end)``."""
    return sum(start <= t < end for t in times) / max(end - start, 1e-9)


def active_slots(sample: Sample) -> set[str]:
    """The slot leases of a sample not expired at its time."""
    now_ms = sample.at * 1000
    return {lease for lease, expiry in sample.slots.items() if expiry > now_ms}


def slots_returned(samples: list[Sample], fault: float, settle: float = 2.5) -> tuple[int, float]:
    """The leases held at ``fault`` and still held ``settle`` s later (the faulty host's:
    the others' calls of 1 s have ended by then), and how long after the fault the last of
    them was gone (expired or removed); ``-1`` if one never went."""
    at_fault = next((s for s in samples if s.at >= fault), None)
    later = next((s for s in samples if s.at >= fault + settle), None)
    if at_fault is None or later is None:
        return 0, -1.0
    stuck = active_slots(at_fault) & active_slots(later)
    if not stuck:
        return 0, 0.0
    for sample in samples:
        if sample.at > fault + settle and not stuck & active_slots(sample):
            return len(stuck), sample.at - fault
    return len(stuck), -1.0


def requeued_after(fleet: Fleet, samples: list[Sample], host: str, fault: float) -> float:
    """Seconds from ``fault`` until no message was held by ``host`` any more (requeued by
    the others' recovery); ``-1`` if never."""
    for sample in samples:
        if sample.at > fault and fleet.acks_of(sample, host) == 0:
            return sample.at - fault
    return -1.0


def log_size(path: Path) -> int:
    """A log's size now."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def log_part(path: Path, start: int, end: int | None = None) -> list[str]:
    """The lines of a log between two sizes."""
    with path.open("rb") as log:
        log.seek(start)
        data = log.read() if end is None else log.read(max(0, end - start))
    return data.decode(errors="replace").splitlines()


def pick_faulty(fleet: Fleet, wait: float = 5.0) -> str:
    """The worker host with the most LLM calls under way now (waiting up to ``wait`` s for
    one to have any), so that a fault catches calls in flight."""
    deadline = time.monotonic() + wait
    while True:
        busy: dict[str, int] = {}
        for record in fleet.llm.call("stats")["records"]:
            if record.get("ended") is None and not record.get("probe"):
                host = fleet.host_of(record.get("client"))
                busy[host] = busy.get(host, 0) + 1
        if busy or time.monotonic() > deadline:
            return max(WORKER_HOSTS, key=lambda host: (busy.get(host, 0), host))
        time.sleep(0.1)


def log_sources(lines: list[str], top: int = 3) -> str:
    """The loggers that wrote most of ``lines`` (a traceback counts for the entry it
    follows), as ``logger LEVEL: lines``."""
    counts: dict[str, int] = {}
    source = "?"
    for line in lines:
        if line.startswith("[") and (fields := re.findall(r"\[([^\]]*)\]", line))[3:5]:
            source = " ".join(fields[3:5])
        counts[source] = counts.get(source, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: -item[1])[:top]
    return ", ".join(f"{name}: {n}" for name, n in ranked)


def entries(lines: list[str]) -> int:
    """How many log entries ``lines`` hold (a traceback belongs to its entry)."""
    return sum(line.startswith("[") for line in lines)


def tracebacks(lines: list[str]) -> int:
    """How many tracebacks ``lines`` hold."""
    return sum(line.startswith("Traceback") for line in lines)


def fleet_logs(fleet: Fleet) -> dict[str, Path]:
    """Each worker host's log."""
    return {host: worker.log for host, worker in fleet.workers.items()}


def count_in_logs(paths: dict[str, Path], text: str) -> dict[str, int]:
    """Lines holding ``text`` per host."""
    return {
        host: sum(text in line for line in path.read_text(errors="replace").splitlines())
        for host, path in paths.items()
    }


#: A log entry's time, and a job's wait on another delivery's job lease.
_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")
_LEASE_WAIT = re.compile(r"job_id=(\S+) .*outcome=waiting error=another message of the same job")


def lease_waits(paths: dict[str, Path]) -> dict[str, float]:
    """Per job, seconds from its first to its last wait on another delivery's job lease
    (``outcome=waiting``: another message of the same job is calling the LLM), over
    every host's log."""
    seen: dict[str, list[float]] = {}
    for path in paths.values():
        for line in path.read_text(errors="replace").splitlines():
            if (wait := _LEASE_WAIT.search(line)) and (stamp := _STAMP.match(line)):
                at = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                seen.setdefault(wait.group(1), []).append(at)
    return {job: max(times) - min(times) for job, times in seen.items()}


def lease_note(waits: dict[str, float]) -> str:
    """The jobs that waited long on another delivery's job lease."""
    long = {job: wait for job, wait in waits.items() if wait > LEASE_WAIT_SECONDS}
    if not long:
        return f"no job waited over {LEASE_WAIT_SECONDS:g} s on another delivery's job lease"
    return (
        f"{len(long)} jobs waited over {LEASE_WAIT_SECONDS:g} s (up to "
        f"{max(long.values()):.0f} s) on a job lease left by a delivery that died or was cut off"
    )


def breaker_note(samples: list[Sample], opened: dict[str, int], start: float) -> str:
    """How often, by whom and for how long (from ``start``) the fleet's breaker opened."""
    seconds = sum(
        b.at - a.at for a, b in itertools.pairwise(samples) if a.at >= start and a.breaker_open
    )
    if not any(opened.values()):
        return "breaker never opened"
    by = ", ".join(f"{host} {n}" for host, n in sorted(opened.items()) if n)
    return f"breaker opened by {by}, open {seconds:.1f} s for the whole fleet"


def first_after(times: list[float], start: float) -> float:
    """Seconds from ``start`` to the first of ``times`` after it (``-1``: none)."""
    later = [t for t in times if t >= start]
    return min(later) - start if later else -1.0


def job_calls(llm: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The LLM's answered job calls (not probes)."""
    return [r for r in llm if not r.get("probe") and r.get("status") == 200]


def seconds(value: float) -> str:
    """``value`` seconds as text; a negative value means never."""
    return f"{value:.1f} s" if value >= 0 else "never"


def copies_note(paths: dict[str, Path]) -> str:
    """How many copies of a job found it done: acknowledged as already finished, or
    reporting the result another delivery stored."""
    duplicates = sum(count_in_logs(paths, "outcome=duplicate").values())
    reused = sum(count_in_logs(paths, "reusing the stored LLM result").values())
    redelivered = sum(count_in_logs(paths, "redelivery ignored").values())
    return (
        f"copies that found their job done: {duplicates} duplicates, {redelivered} "
        f"redeliveries ignored, {reused} reused the stored result"
    )


def within(value: float, bound: float) -> bool:
    """``0 <= value <= bound`` (a negative value means never)."""
    return 0 <= value <= bound


# -- scenarios -----------------------------------------------------------------------------


def scenario_cap(run: Run) -> Outcome:
    """1. The fleet-wide cap of 8 over three hosts against an LLM that answers 429 above 8
    in flight; then the LLM down (every request answered 503) for some probe intervals:
    probes across all hosts, and recovery once it is back."""
    fleet = run.fleet
    interval = 3.0 if run.quick else 5.0
    latency = 0.5
    jobs, down_jobs, intervals_down = (80, 24, 3) if run.quick else (200, 48, 5)
    outcome = Outcome(f"1. cap {CAP} over 3 hosts, LLM 429 above {CAP}; LLM down")
    settings = run.settings(LLM_PROBE_INTERVAL_SECONDS=str(interval))
    run.start("1-cap", settings, latency=latency, limit=CAP)
    ids = run.job_ids(jobs)
    sent = fleet.send(ids)
    done = fleet.wait_final(ids, FINAL_TIMEOUT)
    stats = fleet.llm.call("stats")
    peak, busy = stats["peak_in_flight"], stats["busy_answers"]
    peak_slots = max((len(active_slots(s)) for s in fleet.samples), default=0)
    elapsed = (done or time.time()) - sent[0]
    throughput = jobs / elapsed
    outcome.times.append(
        f"{jobs} jobs in {elapsed:.1f} s ({throughput:.1f}/s, ideal {CAP / latency:g}/s)"
    )
    outcome.times.append(f"peak {peak} in flight at the LLM, {busy} 429s, peak slots {peak_slots}")
    outcome.check(f"peak in flight <= {CAP}, no 429", peak <= CAP and busy == 0, f"{peak}, {busy}")

    fleet.llm.call("set", mode="down")
    down_at = time.time()
    down_ids = run.job_ids(down_jobs)
    fleet.send(down_ids)
    time.sleep(intervals_down * interval)
    fleet.llm.call("set", mode="up")
    up_at = time.time()
    down_done = fleet.wait_final(down_ids, FINAL_TIMEOUT)
    llm, _core = run.finish(outcome, ids + down_ids)
    probes = sorted(r["at"] for r in llm if r.get("probe") and r["at"] >= down_at)
    probes_down = [t for t in probes if t < up_at]
    gaps = [b - a for a, b in itertools.pairwise(probes) if a < up_at]
    refused = [r for r in llm if not r.get("probe") and r.get("status") == 503]
    first_call = first_after([r["at"] for r in job_calls(llm)], up_at)
    closing_probe = first_after([r["at"] for r in llm if r.get("probe")], up_at)
    outcome.times.append(
        f"LLM down {up_at - down_at:.0f} s: {len(probes_down)} probes "
        f"(interval {interval:g} s), min gap {min(gaps, default=0):.2f} s; "
        f"{len(refused)} job calls answered 503"
    )
    outcome.times.append(
        f"back: probe after {closing_probe:.2f} s, first job call after {first_call:.2f} s; "
        f"all done {(down_done or time.time()) - up_at:.1f} s after"
    )
    slack = 0.25
    outcome.check(
        "at most one probe per interval across the fleet",
        all(gap >= interval - slack for gap in gaps),
        f"min gap {min(gaps, default=0):.2f} s, interval {interval:g} s",
    )
    outcome.check(
        "recovery within one probe interval",
        within(first_call, interval + 1.0),
        f"first job call {first_call:.2f} s after the LLM came back",
    )
    calls = outcome.accounting.calls_per_host if outcome.accounting else {}
    outcome.times.append(f"LLM calls by host {dict(sorted(calls.items()))}")
    outcome.raw.update(
        {
            "probe_interval_s": interval,
            "peak_in_flight": peak,
            "http_429": busy,
            "peak_slots": peak_slots,
            "jobs_per_second": throughput,
            "probes_while_down": len(probes_down),
            "probe_gaps_s": gaps,
            "job_calls_answered_503": len(refused),
            "recovery_first_job_call_s": first_call,
        }
    )
    return outcome


def _load(
    run: Run,
    label: str,
    warm: float,
    fault: float,
    settings: dict[str, str],
    extra_jobs: int | None = None,
) -> Any:
    """Start a fleet, send enough 1 s jobs for the warm-up, the fault and ``extra_jobs``
    more (40, 80 without ``quick``), wait for the warm-up; the job ids and send times."""
    if extra_jobs is None:
        extra_jobs = 40 if run.quick else 80
    jobs = int(CAP * (warm + min(fault, MAX_LOADED_FAULT)) + extra_jobs)
    run.start(label, settings, latency=1.0, limit=0)
    ids = run.job_ids(jobs)
    sent = run.fleet.send(ids)
    time.sleep(max(0.0, sent[0] + 2 + warm - time.time()))
    return ids, sent


def _in_call(llm: list[dict[str, Any]], fleet: Fleet, host: str, at: float) -> set[int]:
    """Jobs whose LLM call from ``host`` was under way at ``at``."""
    address = fleet.address(host)
    return {
        int(r["job"])
        for r in llm
        if r.get("client") == address
        and r.get("job") is not None
        and r["at"] <= at
        and (r.get("ended") is None or r["ended"] > at)
    }


def _held_fate(
    outcome: Outcome, faulty: str, held: set[int], core: list[dict[str, Any]], fault: float
) -> float:
    """Note what became of the faulty host's jobs; seconds after the fault until the last
    of them had its first final state."""
    first: dict[str, float] = {}
    for record in sorted(core, key=lambda r: r["at"]):
        first.setdefault(record["job"], record["at"])
    delays = {job: first[str(job)] - fault for job in held if str(job) in first}
    missing = len(held) - len(delays)
    last = max(delays.values(), default=0.0)
    outcome.times.append(
        f"{faulty}'s {len(held)} held jobs all final {last:.1f} s after the fault"
        + (f" ({missing} never)" if missing else "")
    )
    outcome.raw["held_final_after_s"] = {str(job): round(d, 1) for job, d in delays.items()}
    outcome.raw["fault_at"] = fault
    return last


def _note_copies_leases_and_breaker(
    outcome: Outcome,
    logs: dict[str, Path],
    samples: list[Sample],
    opened: dict[str, int],
    fault_at: float,
) -> dict[str, float]:
    """Note what the copies of a faulty host's messages did, their waits on job leases and
    the breaker; return the waits (seconds per job)."""
    waits = lease_waits(logs)
    outcome.times.append(copies_note(logs))
    outcome.times.append(lease_note(waits))
    outcome.raw["lease_waits_s"] = {job: round(w, 1) for job, w in waits.items() if w > 1}
    outcome.times.append(breaker_note(samples, opened, fault_at))
    return waits


def _check_requeue_and_slots(
    outcome: Outcome,
    requeued: float,
    requeue_bound: float,
    stuck: int,
    freed: float,
    lease: float,
) -> None:
    """The checks of a host lost to the fleet: its held messages requeued within heartbeat
    timeout + recovery interval (``requeue_bound``), its slots back within their lease."""
    outcome.check(
        "held messages requeued within heartbeat timeout + recovery interval",
        within(requeued, requeue_bound + 1),
        f"{requeued:.1f} s (bound {requeue_bound + 1:g} s)",
    )
    outcome.check(
        "its slots back within the lease",
        within(freed, lease + 1),
        f"{stuck} slots, {freed:.1f} s (lease {lease:g} s)",
    )


def scenario_partition(run: Run) -> Outcome:
    """2. A worker host cut off from everything (its switch port down) for 30 s under load,
    then back: the others go on, its jobs are neither lost nor finished twice, its slots
    return within the lease; and what it logged meanwhile."""
    fleet = run.fleet
    warm, fault = run.timing()
    settings = run.settings()
    ids, _ = _load(run, "2-partition", warm, fault, settings)
    faulty = pick_faulty(fleet)
    outcome = Outcome(f"2. {faulty} partitioned {fault:g} s, 1 s LLM")
    logs = fleet_logs(fleet)
    llm_before = fleet.llm.call("stats")["records"]
    held = fleet.held_jobs(faulty)
    sizes = {host: log_size(path) for host, path in logs.items()}
    fault_at = time.time()
    fleet.fabric.link(faulty, up=False)
    time.sleep(fault)
    fleet.fabric.link(faulty, up=True)
    healed_at = time.time()
    during = {host: log_part(path, sizes[host], log_size(path)) for host, path in logs.items()}
    calling = _in_call(llm_before, fleet, faulty, fault_at)
    done = fleet.wait_final(ids, FINAL_TIMEOUT)
    samples = list(fleet.samples)
    opened = count_in_logs(logs, "breaker opened")
    llm, core = run.finish(outcome, ids)

    firsts = first_completions(core)
    times = [r["at"] for r in firsts.values()]
    others = [r["at"] for r in firsts.values() if fleet.host_of(r["client"]) != faulty]
    before = rate(times, fault_at - warm, fault_at)
    during_rate = rate(others, fault_at, healed_at)
    ratio = during_rate / before if before else 0.0
    requeued = requeued_after(fleet, samples, faulty, fault_at)
    stuck, freed = slots_returned(samples, fault_at)
    lease = float(settings["LLM_SLOT_LEASE_SECONDS"])
    heartbeat = float(settings["BROKER_HEARTBEAT_TIMEOUT_SECONDS"])
    recovery = float(settings["BROKER_RECOVERY_INTERVAL_SECONDS"])
    back = first_after(
        [r["at"] for r in job_calls(llm) if fleet.host_of(r["client"]) == faulty], healed_at
    )
    outcome.times.append(
        f"throughput before {before:.1f}/s, others during {during_rate:.1f}/s (ratio {ratio:.2f})"
    )
    outcome.times.append(
        f"{faulty} held {len(held)} messages ({len(calling)} in an LLM call): "
        f"requeued after {seconds(requeued)}"
    )
    _held_fate(outcome, faulty, held | calling, core, fault_at)
    outcome.times.append(
        f"{stuck} slots of {faulty} back after {seconds(freed)} (lease {lease:g} s)"
    )
    outcome.times.append(f"{faulty} calling the LLM again {seconds(back)} after the heal")
    others_lines = [len(during[h]) for h in sorted(during) if h != faulty]
    outcome.times.append(
        f"log during the partition: {faulty} {len(during[faulty])} lines "
        f"({entries(during[faulty])} entries, {tracebacks(during[faulty])} tracebacks; "
        f"most from {log_sources(during[faulty])}), others {others_lines} lines"
    )
    _note_copies_leases_and_breaker(outcome, logs, samples, opened, fault_at)
    outcome.times.append(f"all final {(done or time.time()) - healed_at:.1f} s after the heal")
    outcome.check(
        "others' throughput during >= 0.6 of the fleet's before", ratio >= 0.6, f"{ratio:.2f}"
    )
    _check_requeue_and_slots(outcome, requeued, heartbeat + recovery, stuck, freed, lease)
    outcome.raw.update(
        {
            "held": sorted(held),
            "in_call": sorted(calling),
            "rate_before": before,
            "rate_others_during": during_rate,
            "requeued_after_s": requeued,
            "slots_stuck": stuck,
            "slots_freed_after_s": freed,
            "faulty": faulty,
            "calls_per_host": outcome.accounting.calls_per_host if outcome.accounting else {},
            "log_lines_during": {h: len(lines) for h, lines in during.items()},
            "log_entries_during": {h: entries(lines) for h, lines in during.items()},
            "log_sources_during": log_sources(during[faulty], top=8),
            "tracebacks_during": {h: tracebacks(lines) for h, lines in during.items()},
            "breaker_opened_lines": opened,
            "faulty_back_after_s": back,
        }
    )
    return outcome


def host_down(
    run: Run,
    label: str,
    *,
    freeze: bool,
    warm: float | None = None,
    fault: float | None = None,
    extra_jobs: int | None = None,
    **changes: str,
) -> Outcome:
    """3. A worker host powered off (every process SIGKILLed at once, its link cut), or
    frozen (SIGSTOP) for ``fault`` s and resumed: its messages go to the others, its slots
    come back, nothing doubles when a frozen host resumes.  ``changes``: settings."""
    fleet = run.fleet
    warm = warm if warm is not None else run.timing()[0]
    fault = fault if fault is not None else run.timing()[1]
    what = f"frozen (SIGSTOP) {fault:g} s" if freeze else "powered off (SIGKILL, link down)"
    settings = run.settings(**changes)
    ids, _ = _load(run, label, warm, fault, settings, extra_jobs)
    faulty = pick_faulty(fleet)
    outcome = Outcome(f"3. {faulty} {what}, 1 s LLM")
    logs = fleet_logs(fleet)
    llm_before = fleet.llm.call("stats")["records"]
    held = fleet.held_jobs(faulty)
    fault_at = time.time()
    size, resumed_at = 0, 0.0
    if freeze:
        signalled = fleet.fabric.signal_host(faulty, signal.SIGSTOP)
        time.sleep(fault)
        size = log_size(logs[faulty])
        fleet.fabric.signal_host(faulty, signal.SIGCONT)
        resumed_at = time.time()
    else:
        fleet.fabric.link(faulty, up=False)
        signalled = fleet.fabric.signal_host(faulty, signal.SIGKILL)
    calling = _in_call(llm_before, fleet, faulty, fault_at)
    done = fleet.wait_final(ids, FINAL_TIMEOUT)
    time.sleep(3)  # a late copy of the frozen host would report now
    samples = list(fleet.samples)
    opened = count_in_logs(logs, "breaker opened")
    llm, core = run.finish(outcome, ids)

    heartbeat = float(settings["BROKER_HEARTBEAT_TIMEOUT_SECONDS"])
    recovery = float(settings["BROKER_RECOVERY_INTERVAL_SECONDS"])
    lease = float(settings["LLM_SLOT_LEASE_SECONDS"])
    job_lease = heartbeat  # a job lease lives BROKER_HEARTBEAT_TIMEOUT_SECONDS unrenewed
    requeued = requeued_after(fleet, samples, faulty, fault_at)
    elsewhere = first_after(
        [
            r["at"]
            for r in job_calls(llm)
            if r["job"] in held | calling and fleet.host_of(r["client"]) != faulty
        ],
        fault_at,
    )
    stuck, freed = slots_returned(samples, fault_at)
    outcome.times.append(
        f"{signalled} processes signalled; {len(held)} messages held "
        f"({len(calling)} in an LLM call): requeued after {seconds(requeued)}, "
        f"first LLM call for one of them from another host after {seconds(elsewhere)}"
    )
    last = _held_fate(outcome, faulty, held | calling, core, fault_at)
    outcome.times.append(f"{stuck} slots back after {seconds(freed)} (lease {lease:g} s)")
    if freeze:
        after = log_part(logs[faulty], size)
        outcome.times.append(
            f"{faulty} after resuming: {len(after)} log lines ({entries(after)} entries, "
            f"{tracebacks(after)} tracebacks; most from {log_sources(after)})"
        )
        outcome.raw["log_lines_after_resume"] = len(after)
        outcome.raw["resumed_at"] = resumed_at
    waits = _note_copies_leases_and_breaker(outcome, logs, samples, opened, fault_at)
    outcome.times.append(f"all final {(done or time.time()) - fault_at:.1f} s after the fault")
    _check_requeue_and_slots(outcome, requeued, heartbeat + recovery, stuck, freed, lease)
    longest_wait = max(waits.values(), default=0.0)
    outcome.check(
        "no copy waited on its job's lease past the lease (BROKER_HEARTBEAT_TIMEOUT_SECONDS)",
        longest_wait <= job_lease + recovery + 1,
        f"longest wait {longest_wait:.1f} s (job lease {job_lease:g} s); "
        f"held jobs final {last:.1f} s after the fault",
    )
    outcome.raw.update(
        {
            "faulty": faulty,
            "held": sorted(held),
            "in_call": sorted(calling),
            "requeued_after_s": requeued,
            "first_run_elsewhere_s": elsewhere,
            "slots_stuck": stuck,
            "slots_freed_after_s": freed,
            "held_last_final_after_s": last,
            "breaker_opened_lines": opened,
        }
    )
    return outcome


def scenario_power_off(run: Run) -> Outcome:
    """3a. A worker host powered off under load."""
    return host_down(run, "3-power-off", freeze=False)


def scenario_freeze(run: Run) -> Outcome:
    """3b. A worker host frozen under load, then resumed."""
    return host_down(run, "3-freeze", freeze=True)


#: ``duration_ms=`` of a job's log line.
_DURATION = re.compile(r"duration_ms=(\d+)")


def scenario_flap(run: Run) -> Outcome:
    """4. A worker host's link down and up every 1 to 2 s: nothing lost or doubled, and the
    whole-call deadline (``LLM_TIMEOUT_SECONDS`` 5 s here) still bounds its calls."""
    fleet = run.fleet
    warm, fault = run.timing()
    timeout = 5.0
    settings = run.settings(LLM_TIMEOUT_SECONDS=f"{timeout:g}")
    ids, _ = _load(run, "4-flap", warm, fault, settings)
    faulty = pick_faulty(fleet)
    outcome = Outcome(f"4. {faulty}'s link flapping {fault:g} s (1-2 s down/up), 1 s LLM")
    logs = fleet_logs(fleet)
    size = log_size(logs[faulty])
    chooser = random.Random(4)
    started = time.time()
    flaps = 0
    while time.time() - started < fault:
        fleet.fabric.link(faulty, up=False)
        time.sleep(chooser.uniform(1.0, 2.0))
        fleet.fabric.link(faulty, up=True)
        flaps += 1
        time.sleep(chooser.uniform(1.0, 2.0))
    ended = time.time()
    done = fleet.wait_final(ids, FINAL_TIMEOUT)
    lines = log_part(logs[faulty], size)
    opened = count_in_logs(logs, "breaker opened")
    llm, _ = run.finish(outcome, ids)

    address = fleet.address(faulty)
    calls = [
        r for r in job_calls(llm) if r["client"] == address and started <= r["at"] <= ended + 10
    ]
    unacknowledged = [r for r in calls if not r.get("acked")]
    answered_in = [r["acked"] - r["at"] for r in calls if r.get("acked")]
    durations = [int(m.group(1)) / 1000 for line in lines if (m := _DURATION.search(line))]
    timeouts = sum("timed out" in line.lower() or "did not answer" in line for line in lines)
    outcome.times.append(
        f"{flaps} flaps; {faulty} made {len(calls)} answered calls, "
        f"{len(unacknowledged)} answers never acknowledged"
    )
    outcome.times.append(
        f"longest call to an acknowledged answer {max(answered_in, default=0):.2f} s "
        f"(deadline {timeout:g} s); longest job attempt logged {max(durations, default=0):.1f} s"
    )
    outcome.times.append(
        f"{faulty} log: {len(lines)} lines ({entries(lines)} entries, {timeouts} timeouts, "
        f"{tracebacks(lines)} tracebacks)"
    )
    outcome.times.append(breaker_note(fleet.samples, opened, started))
    outcome.times.append(f"all final {(done or time.time()) - ended:.1f} s after the flapping")
    bound = sum(
        float(settings[name])
        for name in ("LLM_TIMEOUT_SECONDS", "CORE_TIMEOUT_SECONDS", "REDIS_SOCKET_TIMEOUT_SECONDS")
    ) + float(settings.get("LLM_CAPACITY_WAIT_SECONDS", "5"))
    outcome.check(
        "each attempt within its bounds (capacity wait + LLM, Core and Redis timeouts)",
        max(durations, default=0) <= bound,
        f"longest {max(durations, default=0):.1f} s (bound {bound:g} s)",
    )
    outcome.check(
        "no answer taken past the whole-call deadline",
        max(answered_in, default=0) <= timeout + 0.5,
        f"{max(answered_in, default=0):.2f} s (deadline {timeout:g} s)",
    )
    outcome.raw.update(
        {
            "faulty": faulty,
            "flaps": flaps,
            "faulty_calls": len(calls),
            "unacknowledged_answers": len(unacknowledged),
            "longest_acknowledged_call_s": max(answered_in, default=0),
            "longest_attempt_logged_s": max(durations, default=0),
            "timeout_lines": timeouts,
            "breaker_opened_lines": opened,
        }
    )
    return outcome


def _replica_lag(sentinel_set: SentinelSet) -> int:
    """Bytes of the primary's replication stream the replica has not confirmed yet."""
    primary = sentinel_set.client("rp")
    try:
        info = primary.info("replication")
        offsets = [
            int(value["offset"])
            for name, value in info.items()
            if name.startswith("slave") and isinstance(value, dict)
        ]
        return int(info["master_repl_offset"]) - max(offsets, default=0)
    except (redis.RedisError, OSError, KeyError, ValueError):
        return -1
    finally:
        primary.close()


def sentinel_failover(run: Run, *, stock: bool) -> Outcome:
    """5. Redis behind Sentinel (a primary, its replica, three sentinels; hosts ``rp``,
    ``rr``, ``rs``), the workers' ``REDIS_URL`` in the ``redis+sentinel://`` form; under
    load (1 s LLM) the primary's host powered off (link cut, SIGKILL): the sentinels
    promote the replica, the workers go on with it.  ``stock``: the same with Dramatiq's
    own ``RedisBroker`` on a redis-py Sentinel client (:mod:`bench.fleet_stock`), 3
    threads a host (9 in flight, as near the product's cap of 8 as three hosts allow)."""
    fleet = run.fleet
    warm = 6.0 if run.quick else 10.0
    count = 250 if run.quick else 350
    label = "5-sentinel-stock" if stock else "5-sentinel"
    sentinel_set = SentinelSet(fleet)
    producer = None
    try:
        sentinel_set.start(label)
        fleet.redis_socket = sentinel_set.socket("rp")
        fleet.queue = STOCK_QUEUE if stock else QUEUE
        fleet.reset()
        fleet.llm.call("set", latency=1.0, limit=0, mode="up")
        producer = fleet._agent(
            "prod",
            ["stock-producer" if stock else "producer"],
            log=f"{label}-prod",
            REDIS_URL=sentinel_set.url,
            STOCK_SENTINELS=sentinel_set.sentinels,
        )
        if stock:
            command = [sys.executable, "-m", "dramatiq", "bench.fleet_stock"]
            command += ["--processes", "1", "--threads", "3"]
            settings = {"STOCK_SENTINELS": sentinel_set.sentinels}
            fleet.start_workers(label, settings, command=command)
        else:
            settings = run.settings(REDIS_URL=sentinel_set.url)
            fleet.start_workers(label, settings)
        fleet.observe()
        ids = run.job_ids(count)
        sent = producer.call("send", ids=ids)["sent"]
        time.sleep(max(0.0, sent[0] + 2 + warm - time.time()))
        what = "Dramatiq's RedisBroker (redis-py Sentinel client)" if stock else "llm-worker"
        outcome = Outcome(f"5. Sentinel: primary powered off under load, {what}, 1 s LLM")
        logs = fleet_logs(fleet)
        sizes = {host: log_size(path) for host, path in logs.items()}
        lag = _replica_lag(sentinel_set)
        kill_at = time.time()
        killed = sentinel_set.kill_primary()
        promoted = sentinel_set.wait_promoted()
        fleet.redis_socket = sentinel_set.socket("rr")
        done = fleet.wait_final(ids, FINAL_TIMEOUT)
        time.sleep(3)  # a late second report would come now
        after = {host: log_part(path, sizes[host]) for host, path in logs.items()}
        fleet.stop_observing()
        llm = fleet.llm.call("stats")["records"]
        core = fleet.core.call("stats")["records"]
        outcome.accounting = account(ids, llm, core, fleet.notifications(), fleet.host_of)
        if not stock:
            outcome.check_jobs()
        fleet.stop_workers()
    finally:
        if producer is not None:
            producer.stop()
            fleet.agents.remove(producer)
        sentinel_set.stop()
        fleet.redis_socket = fleet.fabric.folder / "redis.sock"
        fleet.queue = QUEUE

    switch = (promoted - kill_at) if promoted else float("nan")
    times = sorted(r["at"] for r in first_completions(core).values())
    resumed = first_after(times, promoted or kill_at)
    around = [t for t in times if t >= kill_at - 2]
    gaps = [b - a for a, b in itertools.pairwise(around)]
    before = rate(times, kill_at - warm, kill_at)
    back = promoted or kill_at
    after_rate = rate(times, back + resumed, back + resumed + 10)
    lines = sum(len(part) for part in after.values())
    outcome.times.append(
        f"replica {lag} bytes behind at the kill; {killed} processes killed; "
        f"replica promoted {seconds(switch)} after (down-after {DOWN_AFTER_MS / 1000:g} s)"
    )
    outcome.times.append(
        f"first job completed {seconds(resumed)} after the promotion; longest gap between "
        f"completions {max(gaps, default=0):.1f} s; throughput {before:.1f}/s before, "
        f"{after_rate:.1f}/s after"
    )
    outcome.times.append(
        f"workers' log after the kill: {lines} lines "
        f"({sum(tracebacks(p) for p in after.values())} tracebacks; most from "
        f"{log_sources([line for part in after.values() for line in part])})"
    )
    outcome.times.append(f"all final {(done or time.time()) - kill_at:.1f} s after the kill")
    if not stock:
        outcome.check(
            "replica promoted within down-after + 10 s",
            within(switch, DOWN_AFTER_MS / 1000 + 10),
            f"{switch:.1f} s",
        )
        outcome.check(
            "jobs complete again within 15 s of the promotion",
            within(resumed, 15),
            f"{resumed:.1f} s",
        )
        outcome.check("every job final", done is not None, "within the final timeout")
    outcome.raw.update(
        {
            "kill_at": kill_at,
            "promoted_at": promoted,
            "replica_lag_bytes": lag,
            "switch_s": switch,
            "resumed_after_promotion_s": resumed,
            "longest_gap_s": max(gaps, default=0),
            "rate_before": before,
            "rate_after": after_rate,
            "log_lines_after_kill": {h: len(part) for h, part in after.items()},
            "all_final_after_kill_s": (done - kill_at) if done else None,
        }
    )
    return outcome


def scenario_sentinel(run: Run) -> Outcome:
    """5a. Redis Sentinel failover under the product's workers."""
    return sentinel_failover(run, stock=False)


def scenario_sentinel_stock(run: Run) -> Outcome:
    """5b. The same failover under Dramatiq's own broker, for comparison."""
    return sentinel_failover(run, stock=True)


#: The scenarios by ``--only`` name, in the table's order.
SCENARIOS: dict[str, Callable[[Run], Outcome]] = {
    "cap": scenario_cap,
    "partition": scenario_partition,
    "power-off": scenario_power_off,
    "freeze": scenario_freeze,
    "flap": scenario_flap,
    "sentinel": scenario_sentinel,
    "sentinel-stock": scenario_sentinel_stock,
}


# -- the table -----------------------------------------------------------------------------


def render(outcomes: list[Outcome]) -> str:
    """The results as one markdown table."""
    lines = [
        "| scenario | jobs sent | completed | failed/skipped/expired | lost | "
        "doubled (2nd LLM answer / 2 results) | notable times |",
        "|---|---|---|---|---|---|---|",
    ]
    for outcome in outcomes:
        a = outcome.accounting
        if a is None:
            lines.append(f"| {outcome.scenario} | - | - | - | - | - | {outcome.note} |")
            continue
        others = "/".join(str(a.states.get(state, 0)) for state in ("failed", "skipped", "expired"))
        lost = str(len(a.lost))
        if a.no_notification:
            lost += f" ({len(a.no_notification)} without notification)"
        doubled = f"{len(a.recalled_after_acknowledged)} / {len(a.two_results)}"
        extra = len(a.recalled) - len(a.recalled_after_acknowledged)
        if extra:
            doubled += f" ({extra} re-asked after an answer lost on the way)"
        if a.double_notification or a.conflicting_states:
            doubled += (
                f"; {len(a.double_notification)} notified twice, "
                f"{len(a.conflicting_states)} with two states"
            )
        lines.append(
            f"| {outcome.scenario} | {a.sent} | {a.states.get('completed', 0)} | {others} | "
            f"{lost} | {doubled} | {'; '.join(outcome.times)} |"
        )
    return "\n".join(lines)


def render_checks(outcomes: list[Outcome]) -> str:
    """Every target, met or not."""
    lines = []
    for outcome in outcomes:
        for check in outcome.checks:
            mark = "ok  " if check.ok else "FAIL"
            lines.append(f"{mark} {outcome.scenario.split(' ')[0]} {check.what}: {check.detail}")
    return "\n".join(lines)


def run_scenarios(
    names: list[str], *, quick: bool, logs: Path, fault_seconds: float | None = None
) -> list[Outcome]:
    """Build a fleet, run ``names`` in order, tear it all down; the outcomes."""
    outcomes: list[Outcome] = []
    fleet = Fleet(logs)
    try:
        run = Run(fleet, quick, logs, outcomes, fault_seconds=fault_seconds)
        for name in names:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            started = time.monotonic()
            outcome = SCENARIOS[name](run)
            outcome.raw["seconds"] = round(time.monotonic() - started)
            outcomes.append(outcome)
            if fleet.workers:
                fleet.stop_observing()
                fleet.stop_workers()
    finally:
        fleet.close()
    return outcomes


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios and print the table; exit status 1 if a target was missed."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.fleet",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="shorter faults, fewer jobs")
    parser.add_argument("--only", action="append", choices=list(SCENARIOS), help="repeatable")
    parser.add_argument(
        "--out", type=Path, help="where to write raw numbers (fleet-results.json in --logs)"
    )
    parser.add_argument("--logs", type=Path, help="folder for the logs (kept)")
    parser.add_argument(
        "--fault-seconds",
        type=float,
        help="length of the faults of scenarios 2 to 4 (30, 15 quick)",
    )
    parser.add_argument("--clean", action="store_true", help="remove a crashed run's leftovers")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("needs root (network namespaces)")
    if args.clean:
        removed = clean_leftovers()
        print(f"removed {len(removed)} namespaces: {' '.join(removed) or '-'}")
        return 0
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    logs = args.logs or Path(tempfile.mkdtemp(prefix="llmw-fleet-logs-"))
    logs.mkdir(parents=True, exist_ok=True)
    names = args.only or list(SCENARIOS)
    load_before = os.getloadavg()
    started = time.monotonic()
    try:
        outcomes = run_scenarios(
            names, quick=args.quick, logs=logs, fault_seconds=args.fault_seconds
        )
    except KeyboardInterrupt:
        print(f"interrupted; everything the run made is removed (logs in {logs})")
        return 130
    load_after = os.getloadavg()
    print(render(outcomes))
    print()
    print(render_checks(outcomes))
    print(
        f"\n{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load "
        f"{load_before[0]:.1f} before / {load_after[0]:.1f} after; "
        f"{time.monotonic() - started:.0f} s; logs in {logs}"
    )
    (args.out or logs / "fleet-results.json").write_text(
        json.dumps(
            [
                {**asdict(o), "accounting": asdict(o.accounting) if o.accounting else None}
                for o in outcomes
            ],
            indent=2,
            default=str,
        )
    )
    return 0 if all(check.ok for o in outcomes for check in o.checks) else 1


if __name__ == "__main__":
    sys.exit(main())
