"""A fleet of three worker hosts (network namespaces) with one host frozen under load.

The host's processes are stopped (SIGSTOP) past the heartbeat timeout, so the others
take its fetched messages and run second copies of them while its own copies wait,
frozen mid-call; then it resumes.  Every job ends once: one final state and one result
in Core, one notification.  The job leases of the frozen host expired with its heartbeat,
so a job it was asking the LLM about when it froze is asked again elsewhere (paid twice,
reported once); no other job is paid twice.  The short form of
``python -m bench.fleet --only freeze`` (see :mod:`bench.fleet`); it needs root, ``ip``
and ``redis-server``, and is skipped without them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.chaos, pytest.mark.cli]


def _namespaces_work() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    if not Path("/usr/bin/redis-server").exists():
        return False
    probe = f"lwfprobe-{os.getpid()}"  # not a fleet run's name: never taken for a leftover
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, check=False)
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True, check=False)
    return made.returncode == 0


@pytest.mark.skipif(not _namespaces_work(), reason="needs root, ip netns and redis-server")
def test_a_frozen_host_resumes_and_no_job_is_lost_or_doubled(tmp_path: Path) -> None:
    from bench.fleet import Run, host_down
    from bench.fleet_cluster import Fleet

    fleet = Fleet(tmp_path)
    try:
        run = Run(fleet, quick=True, logs=tmp_path)
        outcome = host_down(
            run,
            "freeze",
            freeze=True,
            warm=3.0,
            fault=8.0,
            extra_jobs=16,
            BROKER_HEARTBEAT_TIMEOUT_SECONDS="3",
            BROKER_RECOVERY_INTERVAL_SECONDS="1",
        )
    finally:
        fleet.close()
    jobs = {check.what: check for check in outcome.checks}
    for what in (
        "no job lost",
        "one notification per job",
        "one result and one final state per job in Core",
    ):
        assert jobs[what].ok, f"{what}: {jobs[what].detail} (logs in {tmp_path})"
    assert outcome.raw["held"], "the frozen host held no message"
    assert outcome.raw["requeued_after_s"] >= 0, "its messages were not given to the others"
    assert outcome.accounting is not None
    paid_twice = {str(job) for job in outcome.accounting.recalled_after_acknowledged}
    in_a_call = {str(job) for job in outcome.raw["in_call"]}
    assert paid_twice <= in_a_call, f"paid twice though not in a call: {paid_twice - in_a_call}"
    assert outcome.accounting.states == {"completed": outcome.accounting.sent}
    assert not list(Path("/var/run/netns").glob(f"*{fleet.fabric.run_id}*"))
