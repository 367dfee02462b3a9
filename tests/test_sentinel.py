"""Redis behind Sentinel: a worker and a producer find the primary through three
sentinels, and go on with the new primary after the old one is killed."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from llm_worker.redis_pools import SentinelURL, connection_pool
from tests.payloads import GOOD_REMINDER
from tests.support import produce, server_port, stop_processes, wait_for

SERVICE = "llmw-primary"
REDIS_SERVER = shutil.which("redis-server") or "redis-server"

pytestmark = pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server")


@dataclass
class SentinelSet:
    """A primary, its replica and three sentinels of a test's own, on loopback."""

    primary: subprocess.Popen[bytes]
    primary_port: int
    replica_port: int
    sentinel_ports: list[int]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def primary_address(self) -> tuple[str, int]:
        """Where the sentinels say the primary is now."""
        client = redis.Redis(port=self.sentinel_ports[0], socket_timeout=2, decode_responses=True)
        try:
            host, port = client.sentinel_get_master_addr_by_name(SERVICE)
        finally:
            client.close()
        return host, int(port)


def _server(folder: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    command = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)]
    process = subprocess.Popen(
        [*command, "--save", "", "--appendonly", "yes", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # stop_processes kills its process group
    )
    client = redis.Redis(port=port, socket_timeout=2)
    wait_for(lambda: _answers(client), timeout=30)
    client.close()
    return process


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def _replicating(port: int) -> bool:
    client = redis.Redis(port=port, socket_timeout=2)
    try:
        return client.info("replication").get("master_link_status") == "up"
    except redis.RedisError:
        return False
    finally:
        client.close()


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSet]:
    """Start the set; everything is killed after the test."""
    processes: list[subprocess.Popen[bytes]] = []
    primary_port, replica_port = server_port(), server_port()
    primary = _server(tmp_path / "primary", primary_port)
    processes.append(primary)
    replica_args = ("--replicaof", "127.0.0.1", str(primary_port))
    processes.append(_server(tmp_path / "replica", replica_port, *replica_args))
    wait_for(lambda: _replicating(replica_port), timeout=30)
    sentinel_ports = [server_port() for _ in range(3)]
    for n, port in enumerate(sentinel_ports):
        folder = tmp_path / f"sentinel{n}"
        folder.mkdir()
        config = folder / "sentinel.conf"  # Sentinel rewrites its own configuration file
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
        )
        processes.append(
            subprocess.Popen(
                [REDIS_SERVER, str(config), "--sentinel"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
    found = SentinelSet(primary, primary_port, replica_port, sentinel_ports)
    wait_for(lambda: _sentinels_ready(found), timeout=60, interval=0.2)
    yield found
    stop_processes(processes)


def _sentinels_ready(found: SentinelSet) -> bool:
    """Whether every sentinel knows the replica and the two other sentinels (which they
    learn through the primary: a failover needs a majority of them to agree)."""
    for port in found.sentinel_ports:
        client = redis.Redis(port=port, socket_timeout=2)
        try:
            if not client.sentinel_slaves(SERVICE) or len(client.sentinel_sentinels(SERVICE)) < 2:
                return False
        except redis.RedisError:
            return False
        finally:
            client.close()
    return True


def _send_intent(env: dict[str, str], job_id: int) -> None:
    produce(env, f"from actors import intent_classify as a; a.send({job_id}, 42, {{'text': 'x'}})")


def test_jobs_go_on_with_the_new_primary_after_a_failover(
    sentinels, start_worker, cli_env, fake_llm, fake_core
):
    fake_llm.answers["IntentResult"] = GOOD_REMINDER
    env = {**cli_env, "REDIS_URL": sentinels.url}
    start_worker("--processes", "1", "--threads", "4", REDIS_URL=sentinels.url)
    for job_id in range(1, 4):
        _send_intent(env, job_id)
    wait_for(lambda: all(fake_core.job_updates(n) for n in range(1, 4)), timeout=60)

    sentinels.primary.send_signal(signal.SIGKILL)  # the primary's host is gone
    sentinels.primary.wait(timeout=10)
    new_primary = ("127.0.0.1", sentinels.replica_port)
    wait_for(lambda: sentinels.primary_address() == new_primary, timeout=60, interval=0.5)
    for job_id in range(4, 7):
        _send_intent(env, job_id)  # the producer finds the new primary too

    wait_for(lambda: all(fake_core.job_updates(n) for n in range(4, 7)), timeout=90)
    assert [fake_core.job_updates(n)[-1]["status"] for n in range(1, 7)] == ["completed"] * 6
    notes = redis.Redis(port=sentinels.replica_port).xlen("notify:telegram")
    assert notes >= 3  # the notifications of the jobs after the failover, on the new primary


def test_a_sentinel_url_is_read_into_its_parts():
    url = "rediss+sentinel://:s%40cret@10.0.0.1:26379,[::1]:26380/mymaster/3?sentinel_password=x"
    parsed = SentinelURL.parse(url)
    assert parsed.sentinels == (("10.0.0.1", 26379), ("::1", 26380))
    assert (parsed.service_name, parsed.db, parsed.password) == ("mymaster", 3, "s@cret")
    assert (parsed.sentinel_password, parsed.ssl) == ("x", True)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+sentinel://host/mymaster", "must be host:port"),
        ("redis+sentinel://host:1/", "service_name"),
        ("redis+sentinel://host:1/mymaster/zero", "must be a number"),
    ],
)
def test_a_malformed_sentinel_url_says_what_is_wrong(url, problem):
    with pytest.raises(ValueError, match=problem):
        connection_pool(url)
