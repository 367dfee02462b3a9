"""Redis behind Sentinel for the fleet: a primary, its replica and three sentinels, each
host a network namespace of the fleet's switch (:mod:`bench.netns`).

Hosts: ``rp`` (the primary and a sentinel), ``rr`` (the replica and a sentinel), ``rs``
(the third sentinel).  The harness reaches the two Redis servers through their Unix
sockets and the sentinels through ``redis-cli`` run inside a host, never over the fleet's
network.  :meth:`SentinelSet.kill_primary` powers the primary's host off (its link cut,
its processes SIGKILLed); :meth:`SentinelSet.stop` kills every process of the three hosts
and empties their data, so the next scenario starts from a fresh set.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

from .fleet_cluster import Fleet

#: The service the sentinels watch.
SERVICE = "llmw-primary"
#: The set's hosts and the last byte of their addresses.
HOSTS = {"rp": 6, "rr": 7, "rs": 8}
REDIS_PORT = 6379
SENTINEL_PORT = 26379
#: The sentinels' timings (as in ``tests/test_sentinel.py``).
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


class SentinelSet:
    """The primary, replica and sentinels of one scenario on ``fleet``'s switch."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        for name, number in HOSTS.items():
            if name not in fleet.fabric.hosts:
                fleet.fabric.add_host(name, number)
        self.folder = fleet.fabric.folder / "sentinel-set"
        self.processes: list[subprocess.Popen[bytes]] = []

    # -- addresses ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The product's ``redis+sentinel://`` URL of the set."""
        hosts = ",".join(f"{self.fleet.address(h)}:{SENTINEL_PORT}" for h in HOSTS)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    @property
    def sentinels(self) -> str:
        """The sentinels as ``host:port,...`` (for :mod:`bench.fleet_stock`)."""
        return ",".join(f"{self.fleet.address(h)}:{SENTINEL_PORT}" for h in HOSTS)

    def socket(self, host: str) -> Path:
        """The Unix socket of the Redis server on ``host`` (``rp`` or ``rr``)."""
        return self.folder / f"{host}.sock"

    def client(self, host: str) -> redis.Redis:
        """A client of the Redis server on ``host`` through its Unix socket."""
        return redis.Redis(unix_socket_path=str(self.socket(host)), socket_timeout=5)

    # -- starting ----------------------------------------------------------------------

    def _spawn(self, host: str, command: list[str], log: str) -> None:
        out = (self.fleet.logs / log).open("wb")
        self.processes.append(
            subprocess.Popen(
                self.fleet.fabric.command(host, command),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        out.close()

    def _redis(self, host: str, label: str, *extra: str) -> None:
        data = self.folder / host
        data.mkdir(parents=True)
        command = ["/usr/bin/redis-server", "--bind", self.fleet.address(host)]
        command += ["--port", str(REDIS_PORT), "--unixsocket", str(self.socket(host))]
        command += ["--unixsocketperm", "700", "--protected-mode", "no"]
        command += ["--appendonly", "yes", "--save", "", "--dir", str(data), *extra]
        self._spawn(host, command, f"{label}-redis-{host}.log")
        self._wait(lambda: self._answers(host), f"the Redis server of {host}")

    def _answers(self, host: str) -> bool:
        client = self.client(host)
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()

    def role(self, host: str) -> str:
        """``master``, ``slave`` or ``down``: what the Redis server on ``host`` is."""
        client = self.client(host)
        try:
            return str(client.info("replication").get("role", "down"))
        except (redis.RedisError, OSError):
            return "down"
        finally:
            client.close()

    def _replicating(self) -> bool:
        client = self.client("rr")
        try:
            return client.info("replication").get("master_link_status") == "up"
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()

    def _sentinel(self, host: str, label: str) -> None:
        folder = self.folder / f"sentinel-{host}"
        folder.mkdir(parents=True)
        config = folder / "sentinel.conf"  # Sentinel rewrites its own configuration file
        config.write_text(
            f"port {SENTINEL_PORT}\nbind {self.fleet.address(host)}\ndir {folder}\n"
            "protected-mode no\n"
            f"sentinel monitor {SERVICE} {self.fleet.address('rp')} {REDIS_PORT} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
        )
        self._spawn(
            host,
            ["/usr/bin/redis-server", str(config), "--sentinel"],
            f"{label}-sentinel-{host}.log",
        )

    def sentinel_view(self, host: str) -> dict[str, str]:
        """``SENTINEL MASTER`` of the sentinel on ``host`` as field: value (empty if it
        does not answer)."""
        command = ["/usr/bin/redis-cli", "-h", self.fleet.address(host), "-p", str(SENTINEL_PORT)]
        command += ["--raw", "sentinel", "master", SERVICE]
        try:
            done = subprocess.run(
                self.fleet.fabric.command(host, command),
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {}
        lines = done.stdout.splitlines()
        return dict(zip(lines[0::2], lines[1::2], strict=False))

    def _ready(self) -> bool:
        """Every sentinel knows the replica and the two other sentinels (a failover needs
        a majority of them to agree)."""
        for host in HOSTS:
            view = self.sentinel_view(host)
            if view.get("num-slaves", "0") == "0" or int(view.get("num-other-sentinels", 0)) < 2:
                return False
        return True

    @staticmethod
    def _wait(ready: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{what} not ready within {timeout:g} s")

    def start(self, label: str) -> None:
        """Start the primary, the replica and the three sentinels; return once every
        sentinel knows the replica and the other sentinels."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self._redis("rp", label)
        self._redis("rr", label, "--replicaof", self.fleet.address("rp"), str(REDIS_PORT))
        self._wait(self._replicating, "replication")
        for host in HOSTS:
            self._sentinel(host, label)
        self._wait(self._ready, "the sentinels", timeout=90)

    # -- the fault ---------------------------------------------------------------------

    def kill_primary(self) -> int:
        """Power the primary's host off: its link cut, then every process of it (the
        primary and its sentinel) SIGKILLed; how many were."""
        self.fleet.fabric.link("rp", up=False)
        return self.fleet.fabric.signal_host("rp", signal.SIGKILL)

    def wait_promoted(self, timeout: float = 60.0) -> float | None:
        """Wait until the replica is a primary; when (``None``: not within ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.role("rr") == "master":
                return time.time()
            time.sleep(0.05)
        return None

    def stop(self) -> None:
        """Kill every process of the set's hosts, restore the primary's link, remove the
        data."""
        for host in HOSTS:
            self.fleet.fabric.signal_host(host, signal.SIGKILL)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        self.processes.clear()
        self.fleet.fabric.link("rp", up=True)
        shutil.rmtree(self.folder, ignore_errors=True)
