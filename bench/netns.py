"""Hosts as Linux network namespaces on one private switch, and the faults done to them.

:class:`Fabric` makes a switch namespace holding a bridge, and one namespace per host,
each joined to the bridge by a veth pair with a private address of ``10.77.0.0/24``
(nothing is routed out of it: no host has a default route, and the root namespace has no
address on it).  Every name it makes starts with :data:`PREFIX` and a run id, and the
run's folder ``/tmp/llmw-fleet-<run id>/`` holds the pid of the process that made it, so
:func:`clean_leftovers` can remove what a crashed run left (its processes, namespaces and
veths) without touching a run still alive.

Faults: a host's link cut at its switch port (:meth:`Fabric.link`: the host keeps its
address and its route, its packets are dropped, its connections time out as across a
real partition); its processes frozen (``SIGSTOP``/``SIGCONT``) or killed at once
(:meth:`Fabric.signal_host`).  This kernel has no ``netem`` queueing discipline, so a
lossy link is a link set down and up at intervals.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

#: The first letters of every namespace, veth and folder the fleet makes.
PREFIX = "lwf"
#: The private network of the hosts (a /24: the host numbers are the last byte).
SUBNET = "10.77.0"
#: Where each run keeps its folder (``llmw-fleet-<run id>``).
RUNS_ROOT = Path(tempfile.gettempdir())
OWNER_FILE = "owner.pid"
#: A run id: five hexadecimal digits.
_RUN_ID = re.compile(r"[0-9a-f]{5}")


def ip(*args: str, namespace: str | None = None, check: bool = True) -> str:
    """Run ``ip ARGS`` (inside ``namespace`` if given); return its output."""
    command = (
        ["ip", *args] if namespace is None else ["ip", "netns", "exec", namespace, "ip", *args]
    )
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")
    return done.stdout


def namespaces() -> list[str]:
    """The names of every network namespace ``ip netns`` knows."""
    return [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]


def namespace_pids(namespace: str) -> list[int]:
    """The ids of every process inside ``namespace``."""
    done = subprocess.run(
        ["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False
    )
    return [int(word) for word in done.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_namespace(namespace: str) -> None:
    """SIGKILL every process of ``namespace`` (SIGCONT first: a frozen one dies too)."""
    for _ in range(20):
        pids = namespace_pids(namespace)
        if not pids:
            return
        for pid in pids:
            for sig in (signal.SIGKILL, signal.SIGCONT):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        time.sleep(0.1)


def _run_id_of(name: str) -> str | None:
    """The run id in a fleet name ``lwf<run id>-...``, or ``None`` for another name."""
    if not name.startswith(PREFIX) or "-" not in name:
        return None
    run_id = name[len(PREFIX) :].split("-", 1)[0]
    return run_id if _RUN_ID.fullmatch(run_id) else None


def clean_leftovers(keep: str | None = None) -> list[str]:
    """Remove what crashed runs left: the processes, namespaces, veths and folders of
    every run whose owner process is gone (never those of ``keep`` or of a live run).

    Returns:
      The names of the namespaces removed.
    """
    removed = []

    def dead(run_id: str) -> bool:
        if run_id == keep:
            return False
        owner = RUNS_ROOT / f"llmw-fleet-{run_id}" / OWNER_FILE
        try:
            return not _alive(int(owner.read_text()))
        except (OSError, ValueError):
            return True

    for namespace in namespaces():
        run_id = _run_id_of(namespace)
        if run_id is not None and dead(run_id):
            _kill_namespace(namespace)
            ip("netns", "delete", namespace, check=False)
            removed.append(namespace)
    for line in ip("-o", "link", "show").splitlines():
        name = line.split(":", 2)[1].strip().split("@")[0]
        run_id = _run_id_of(name)
        if run_id is not None and dead(run_id):
            ip("link", "delete", name, check=False)
    for folder in RUNS_ROOT.glob("llmw-fleet-*"):
        run_id = folder.name.removeprefix("llmw-fleet-")
        if _RUN_ID.fullmatch(run_id) and dead(run_id):
            shutil.rmtree(folder, ignore_errors=True)
    return removed


@dataclass
class Host:
    """One host: its namespace, its veth (``name`` inside it, ``port`` on the switch) and
    its address."""

    name: str
    namespace: str
    veth: str
    port: str
    address: str


@dataclass
class Fabric:
    """A switch and hosts of one run, all removed by :meth:`close`."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:5])
    hosts: dict[str, Host] = field(default_factory=dict)
    folder: Path = field(init=False)
    switch: str = field(init=False)
    _closed: bool = False

    def __post_init__(self) -> None:
        self.folder = RUNS_ROOT / f"llmw-fleet-{self.run_id}"
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / OWNER_FILE).write_text(str(os.getpid()))
        self.switch = self._name("sw")
        ip("netns", "add", self.switch)
        ip("link", "add", "br0", "type", "bridge", namespace=self.switch)
        ip("link", "set", "br0", "up", namespace=self.switch)
        ip("link", "set", "lo", "up", namespace=self.switch)

    def _name(self, suffix: str) -> str:
        name = f"{PREFIX}{self.run_id}-{suffix}"
        if len(name) > 15:  # an interface name's limit
            raise ValueError(f"name too long: {name}")
        return name

    def add_host(self, name: str, number: int) -> Host:
        """A host ``name`` at ``10.77.0.<number>``, joined to the switch."""
        namespace = self._name(name)
        veth, port = self._name(f"{name}"), self._name(f"{name}s")
        ip("netns", "add", namespace)
        ip("link", "set", "lo", "up", namespace=namespace)
        ip("link", "add", veth, "type", "veth", "peer", "name", port)
        ip("link", "set", veth, "netns", namespace)
        ip("link", "set", port, "netns", self.switch)
        ip("link", "set", port, "master", "br0", namespace=self.switch)
        ip("link", "set", port, "up", namespace=self.switch)
        address = f"{SUBNET}.{number}"
        ip("addr", "add", f"{address}/24", "dev", veth, namespace=namespace)
        ip("link", "set", veth, "up", namespace=namespace)
        host = Host(name, namespace, veth, port, address)
        self.hosts[name] = host
        return host

    def link(self, name: str, *, up: bool) -> None:
        """Cut (``up=False``) or restore a host's link at its switch port."""
        host = self.hosts[name]
        ip("link", "set", host.port, "up" if up else "down", namespace=self.switch)

    def pids(self, name: str) -> list[int]:
        """The processes of a host."""
        return namespace_pids(self.hosts[name].namespace)

    def signal_host(self, name: str, sig: signal.Signals) -> int:
        """Send ``sig`` to every process of a host at once; return how many got it."""
        count = 0
        for pid in self.pids(name):
            try:
                os.kill(pid, sig)
                count += 1
            except ProcessLookupError:
                pass
        return count

    def command(self, name: str, argv: list[str]) -> list[str]:
        """``argv`` run inside a host's namespace."""
        return ["ip", "netns", "exec", self.hosts[name].namespace, *argv]

    def close(self) -> None:
        """Kill every process of every host, remove the namespaces (their veths go with
        them) and the run's folder."""
        if self._closed:
            return
        self._closed = True
        for host in self.hosts.values():
            _kill_namespace(host.namespace)
        for host in self.hosts.values():
            ip("netns", "delete", host.namespace, check=False)
        _kill_namespace(self.switch)
        ip("netns", "delete", self.switch, check=False)
        shutil.rmtree(self.folder, ignore_errors=True)
