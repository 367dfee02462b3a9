"""``llm-worker up``'s supervisor: no child outlives it, however it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import ROOT, wait_for

#: A supervisor of two long-sleeping children that writes their pids to a file.
SUPERVISE = """
import sys
from console.ops.supervisor import Child, Supervisor
children = [Child(f"sleeper{n}", [sys.executable, "-c", "import time; time.sleep(600)"])
            for n in range(2)]
supervisor = Supervisor(children)
import threading, time
def note_pids():
    while any(c.process is None for c in children):
        time.sleep(0.01)
    with open(sys.argv[1], "w") as out:
        out.write(" ".join(str(c.process.pid) for c in children))
threading.Thread(target=note_pids, daemon=True).start()
sys.exit(supervisor.run())
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split(")")[-1].split()[0] == "Z")


def _start(tmp_path: Path, **kwargs) -> tuple[subprocess.Popen, list[int]]:
    pids_file = tmp_path / "pids"
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISE, str(pids_file)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        **kwargs,
    )
    wait_for(lambda: pids_file.exists() and pids_file.read_text(), timeout=30)
    pids = [int(pid) for pid in pids_file.read_text().split()]
    wait_for(lambda: all(_alive(pid) for pid in pids), timeout=10)
    return supervisor, pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_children_die_with_a_killed_supervisor(tmp_path):
    supervisor, pids = _start(tmp_path, stdout=subprocess.DEVNULL)
    time.sleep(1)  # the children have exec'd their commands
    supervisor.kill()
    supervisor.wait(timeout=10)

    wait_for(lambda: not any(_alive(pid) for pid in pids), timeout=10)


def test_a_closed_output_does_not_stop_the_supervisor_from_stopping_its_children(tmp_path):
    supervisor, pids = _start(tmp_path, stdout=subprocess.PIPE)
    assert supervisor.stdout is not None
    supervisor.stdout.close()  # the reader (`| tee`) is gone
    supervisor.send_signal(signal.SIGINT)  # Ctrl-C: it writes a line, then stops them

    assert supervisor.wait(timeout=30) == 0
    wait_for(lambda: not any(_alive(pid) for pid in pids), timeout=10)
