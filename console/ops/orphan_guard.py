"""Run a command that dies with the process that started it: ``python -m
console.ops.orphan_guard PARENT_PID COMMAND...``.

On Linux the command gets ``SIGTERM`` when its parent dies, however the parent dies
(``SIGKILL`` included), through ``prctl(PR_SET_PDEATHSIG)``, which survives the
``exec``.  A parent already gone before that was set ends the command before it
starts.  Elsewhere the command just runs.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

#: ``prctl`` option: the signal a process gets when its parent dies (``linux/prctl.h``).
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> bool:
    """Ask for ``SIGTERM`` when the parent dies; ``False`` when it is already gone."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    return os.getppid() == parent


def main(argv: list[str]) -> int:
    """Exec ``argv[1:]`` tied to the parent ``argv[0]``; 2 on bad arguments, 1 if the
    parent is gone."""
    if len(argv) < 2 or not argv[0].isdigit():
        print("usage: python -m console.ops.orphan_guard PARENT_PID COMMAND...", file=sys.stderr)
        return 2
    if not die_with_parent(int(argv[0])):
        return 1
    os.execvp(argv[1], argv[1:])
    return 1  # not reached: exec replaced the process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
