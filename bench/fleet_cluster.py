"""A fleet on one machine: Redis, the fake LLM and Core, a producer and worker hosts, each
in a network namespace of its own (:mod:`bench.netns`), and what the harness sees of them.

:class:`Fleet` starts them, runs ``dramatiq actors`` on each worker host, watches Redis
through its Unix socket (no network traffic: the harness itself stays outside the hosts'
network), and tells each job's fate (:func:`account`) from what the fake Core and the
fake LLM recorded and the notification stream holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import redis

from llm_worker import keys
from llm_worker.broker.redis_layout import RedisLayout

from .fleet_agent import PORT
from .netns import Fabric, clean_leftovers

ROOT = Path(__file__).resolve().parent.parent
QUEUE = "llm.intent"
NOTIFY_STREAM = "notify:telegram"
#: Last byte of each host's address on the fleet's network.
ADDRESSES = {"redis": 2, "llm": 3, "core": 4, "prod": 5, "w1": 11, "w2": 12, "w3": 13}
WORKER_HOSTS = ("w1", "w2", "w3")
#: Seconds between two looks of the observer at Redis.
OBSERVE_SECONDS = 0.25
#: Variables a worker, the producer or an agent inherits from the harness's environment.
PASSED_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "PYTHONPATH")


class Agent:
    """A fleet agent process (:mod:`bench.fleet_agent`) and its JSON-lines pipe."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            start_new_session=True,  # a terminal's Ctrl-C reaches the harness only
        )
        self._lock = threading.Lock()
        ready = self._read()
        if not ready.get("ready"):
            raise RuntimeError(f"agent {command} did not start: {ready} (see {log})")

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"agent exited ({self.process.poll()}); see {self._log.name}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def call(self, command: str, **arguments: Any) -> dict[str, Any]:
        """Send one command; return its answer.

        Raises:
          RuntimeError: the agent answered an error or exited.
        """
        assert self.process.stdin is not None
        with self._lock:
            self.process.stdin.write(json.dumps({"cmd": command, **arguments}) + "\n")
            self.process.stdin.flush()
            answer = self._read()
        if "error" in answer:
            raise RuntimeError(f"agent: {answer['error']}")
        return answer

    def stop(self) -> None:
        """Close its stdin (it then exits) and wait; kill it if it does not."""
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        self._log.close()


@dataclass
class Sample:
    """One look of the observer at Redis."""

    at: float
    slots: dict[str, float]
    heartbeats: dict[str, float]
    acks: dict[str, int]
    unacknowledged: int
    breaker_open: bool


@dataclass
class WorkerHost:
    """A worker host's ``dramatiq`` CLI, its log and its brokers' ids."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    out: IO[bytes]
    broker_ids: list[str] = field(default_factory=list)


class Fleet:
    """The hosts, servers and agents of one harness run; :meth:`close` removes them all.

    Parameters:
      logs: folder of every log (kept after the run).
      latency: the fake LLM's seconds per answer.
    """

    def __init__(self, logs: Path, *, latency: float = 1.0) -> None:
        self.logs = logs
        clean_leftovers()
        self.fabric = Fabric()
        self.workers: dict[str, WorkerHost] = {}
        #: Each worker host's broker ids, kept after its workers stopped.
        self.broker_ids: dict[str, list[str]] = {}
        self.samples: list[Sample] = []
        self._observing = threading.Event()
        self._observer: threading.Thread | None = None
        self._redis_process: subprocess.Popen[bytes] | None = None
        self.agents: list[Agent] = []
        #: The Unix socket of the Redis the harness looks at (:meth:`client`); a scenario
        #: with Redis servers of its own points it at theirs.
        self.redis_socket = self.fabric.folder / "redis.sock"
        #: The job queue the harness watches (a scenario with actors of its own changes it).
        self.queue = QUEUE
        try:
            for name, number in ADDRESSES.items():
                if name in WORKER_HOSTS:
                    continue
                self.fabric.add_host(name, number)
            for name in WORKER_HOSTS:
                self.fabric.add_host(name, ADDRESSES[name])
            self._start_redis()
            self.llm = self._agent("llm", ["llm", "--latency", str(latency)])
            self.core = self._agent("core", ["core"])
            self.producer = self._agent("prod", ["producer"], REDIS_URL=self.redis_url)
        except BaseException:
            self.close()
            raise

    # -- addresses and the environment ----------------------------------------------------

    def address(self, host: str) -> str:
        """A host's address."""
        return self.fabric.hosts[host].address

    @property
    def redis_url(self) -> str:
        """Redis as the hosts reach it."""
        return f"redis://{self.address('redis')}:6379/0"

    @property
    def socket_path(self) -> Path:
        """Redis's Unix socket, the harness's own way in."""
        return self.redis_socket

    def base_env(self, **extra: str) -> dict[str, str]:
        """A clean environment: the harness's ``PATH`` and ``PYTHONPATH`` and ``extra``."""
        passed = {name: os.environ[name] for name in PASSED_VARIABLES if name in os.environ}
        return {**passed, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **extra}

    def worker_env(self, host: str, **settings: str) -> dict[str, str]:
        """A worker host's environment: the fleet's servers and ``settings``."""
        scratch = self.fabric.folder / host
        scratch.mkdir(exist_ok=True)
        fleet = {
            "REDIS_URL": self.redis_url,
            "LLM_BASE_URL": f"http://{self.address('llm')}:{PORT}/v1",
            "CORE_API_URL": f"http://{self.address('core')}:{PORT}",
            "LLM_TOKENIZER": "estimate",
            "METRICS_ENABLED": "false",
            "LIVENESS_DIR": str(scratch / "liveness"),
            "dramatiq_prom_db": str(scratch / "prometheus"),
        }
        return self.base_env(**{**fleet, **settings})

    # -- servers ---------------------------------------------------------------------------

    def _start_redis(self) -> None:
        data = self.fabric.folder / "redis"
        data.mkdir()
        command = [
            "/usr/bin/redis-server",
            "--bind",
            self.address("redis"),
            "--port",
            "6379",
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "700",
            "--protected-mode",
            "no",
            "--appendonly",
            "yes",
            "--save",
            "",
            "--dir",
            str(data),
        ]
        log = (self.logs / "redis.log").open("wb")
        self._redis_process = subprocess.Popen(
            self.fabric.command("redis", command),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except (redis.RedisError, OSError):
                time.sleep(0.1)
        raise RuntimeError("the fleet's redis-server did not start")

    def client(self) -> redis.Redis:
        """A client of the fleet's Redis through its Unix socket."""
        return redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=10)

    def _agent(self, host: str, arguments: list[str], log: str = "", **env: str) -> Agent:
        command = [sys.executable, "-m", "bench.fleet_agent", *arguments]
        command += ["--host", self.address(host)]
        agent = Agent(
            self.fabric.command(host, command),
            self.base_env(**env),
            self.logs / f"{log or host}.log",
        )
        self.agents.append(agent)
        return agent

    # -- workers ---------------------------------------------------------------------------

    def start_workers(
        self,
        label: str,
        settings: dict[str, str],
        *,
        threads: int = 8,
        timeout: float = 180,
        command: list[str] | None = None,
    ) -> None:
        """Start ``dramatiq actors --processes 1 --threads THREADS`` (or ``command``) on
        every worker host, one after another, each host's brokers known by the heartbeats
        they add."""
        from console.ops.supervisor import worker_command

        if command is None:
            command = worker_command(sys.executable, processes=1, threads=threads, gevent=False)
        client = self.client()
        layout = RedisLayout(client)
        for host in WORKER_HOSTS:
            log = self.logs / f"{label}-{host}.log"
            out = log.open("wb")
            before = {m.decode() for m in client.zrange(layout.heartbeats_key, 0, -1)}
            process = subprocess.Popen(
                self.fabric.command(host, command),
                cwd=ROOT,
                env=self.worker_env(host, **settings),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            worker = WorkerHost(host, process, log, out)
            self.workers[host] = worker
            deadline = time.monotonic() + timeout
            while not worker.broker_ids:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the workers of {host} did not start (see {log})")
                time.sleep(0.1)
                now = {m.decode() for m in client.zrange(layout.heartbeats_key, 0, -1)}
                worker.broker_ids = sorted(now - before)
            self.broker_ids[host] = worker.broker_ids
        client.close()

    def stop_workers(self) -> None:
        """Stop every worker host (SIGTERM, then SIGKILL after 30 s); a frozen one is
        resumed first and a cut link restored."""
        for host in self.workers:
            self.fabric.link(host, up=True)
            self.fabric.signal_host(host, signal.SIGCONT)
        for worker in self.workers.values():
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for worker in self.workers.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            self.fabric.signal_host(worker.name, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(timeout=10)
            worker.out.close()
        self.workers.clear()

    def reset(self) -> None:
        """Empty the fleet's Redis (its own server) and the fakes' records."""
        client = self.client()
        client.flushall()
        client.close()
        self.llm.call("reset")
        self.llm.call("set", mode="up", limit=0)
        self.core.call("reset")
        self.samples = []
        self.broker_ids = {}

    # -- the observer ----------------------------------------------------------------------

    def observe(self) -> None:
        """Look at Redis every :data:`OBSERVE_SECONDS` until :meth:`stop_observing`."""
        self._observing.set()
        self._observer = threading.Thread(target=self._observe, name="observer", daemon=True)
        self._observer.start()

    def stop_observing(self) -> None:
        """Stop the observer."""
        self._observing.clear()
        if self._observer is not None:
            self._observer.join(timeout=10)
            self._observer = None

    def _observe(self) -> None:
        client = self.client()
        layout = RedisLayout(client)
        slots_key = keys.capacity_slots("llmw")
        while self._observing.is_set():
            try:
                self.samples.append(self._look(client, layout, slots_key))
            except (redis.RedisError, OSError):
                client.close()  # its Redis may be another one now (see redis_socket)
                client = self.client()
                layout = RedisLayout(client)
            time.sleep(OBSERVE_SECONDS)
        client.close()

    def _look(self, client: redis.Redis, layout: RedisLayout, slots_key: str) -> Sample:
        acks = {}
        for ids in list(self.broker_ids.values()):
            for broker_id in ids:
                for queue in (self.queue, layout.delay_queue(self.queue)):
                    acks[f"{broker_id}/{queue}"] = int(
                        client.scard(layout.acks_key(broker_id, queue))
                    )
        return Sample(
            at=time.time(),
            slots={m.decode(): s for m, s in client.zrange(slots_key, 0, -1, withscores=True)},
            heartbeats={
                m.decode(): s
                for m, s in client.zrange(layout.heartbeats_key, 0, -1, withscores=True)
            },
            acks=acks,
            unacknowledged=layout.unacknowledged_count(self.queue),
            breaker_open=bool(client.exists(keys.breaker("llmw"))),
        )

    def held_jobs(self, host: str) -> set[int]:
        """The job ids of the messages a worker host has fetched and not acknowledged."""
        client = self.client()
        layout = RedisLayout(client)
        found = set()
        for broker_id in self.broker_ids[host]:
            for queue in (self.queue, layout.delay_queue(self.queue)):
                ids = client.smembers(layout.acks_key(broker_id, queue))
                for redis_id in ids:
                    raw = client.hget(layout.messages_key(queue), redis_id)
                    if raw:
                        found.add(int(json.loads(raw)["args"][0]))
        client.close()
        return found

    def acks_of(self, sample: Sample, host: str) -> int:
        """Messages ``host`` had fetched and not acknowledged at ``sample``."""
        ids = self.broker_ids[host]
        return sum(n for key, n in sample.acks.items() if key.split("/")[0] in ids)

    # -- jobs ------------------------------------------------------------------------------

    def send(self, job_ids: list[int]) -> list[float]:
        """Send ``intent_classify`` jobs from the producer host; their send times."""
        sent: list[float] = self.producer.call("send", ids=job_ids)["sent"]
        return sent

    def notifications(self) -> dict[str, int]:
        """Notifications per job id on the stream."""
        client = self.client()
        counts: dict[str, int] = {}
        for _, fields in client.xrange(NOTIFY_STREAM):
            job = str(json.loads(fields[b"data"])["job_id"])
            counts[job] = counts.get(job, 0) + 1
        client.close()
        return counts

    def unacknowledged(self) -> int:
        """Messages of the job queue not acknowledged yet (waiting, delayed, in flight)."""
        client = self.client()
        count = RedisLayout(client).unacknowledged_count(self.queue)
        client.close()
        return count

    def wait_final(self, job_ids: list[int], timeout: float) -> float | None:
        """Wait until every job has a state in Core and its notification and the queue
        is empty; return when that was (``None``: not within ``timeout``)."""
        deadline = time.monotonic() + timeout
        wanted = {str(job) for job in job_ids}
        while time.monotonic() < deadline:
            reported = {r["job"] for r in self.core.call("stats")["records"]}
            notified = set(self.notifications())
            if wanted <= reported and wanted <= notified and self.unacknowledged() == 0:
                return time.time()
            time.sleep(1)
        return None

    def host_of(self, address: str | None) -> str:
        """The host name of an address."""
        for host in self.fabric.hosts.values():
            if host.address == address:
                return host.name
        return str(address)

    def close(self) -> None:
        """Stop everything and remove every namespace, veth and folder of the run."""
        self.stop_observing()
        try:
            if self.workers:
                self.stop_workers()
        finally:
            for agent in self.agents:
                agent.stop()
            if self._redis_process is not None and self._redis_process.poll() is None:
                self._redis_process.terminate()
                try:
                    self._redis_process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._redis_process.kill()
            self.fabric.close()


# -- what became of each job -------------------------------------------------------------


@dataclass
class Accounting:
    """Each job's fate: final states, losses and doubles."""

    sent: int
    states: dict[str, int]
    lost: list[str]
    no_notification: list[str]
    double_notification: list[str]
    conflicting_states: list[str]
    two_results: list[str]
    recalled: list[str]
    recalled_after_acknowledged: list[str]
    calls_per_host: dict[str, int]
    #: For each job answered more than once: its answered calls as (host, at, acknowledged at).
    recalled_calls: dict[str, list[tuple[str, float, float | None]]] = field(default_factory=dict)

    @property
    def doubled(self) -> int:
        """Jobs that paid twice or told twice: an LLM answer received twice, two
        results, two notifications or two final states."""
        return len(
            set(self.recalled_after_acknowledged)
            | set(self.two_results)
            | set(self.double_notification)
            | set(self.conflicting_states)
        )


def _core_fates(
    wanted: list[str], core_records: list[dict[str, Any]]
) -> tuple[dict[str, int], list[str], list[str], list[str]]:
    """Final states by count, and the jobs lost, with two states, with two results."""
    per_job: dict[str, list[dict[str, Any]]] = {job: [] for job in wanted}
    for record in core_records:
        if record["job"] in per_job:
            per_job[record["job"]].append(record)
    states: dict[str, int] = {}
    lost, conflicting, two_results = [], [], []
    for job, records in per_job.items():
        if not records:
            lost.append(job)
            continue
        records.sort(key=lambda r: r["at"])
        final = records[-1]["status"]
        states[final] = states.get(final, 0) + 1
        if len({r["status"] for r in records}) > 1:
            conflicting.append(job)
        if len({r["result"] for r in records if r["status"] == "completed"}) > 1:
            two_results.append(job)
    return states, lost, conflicting, two_results


def _llm_calls(
    wanted: list[str], llm_records: list[dict[str, Any]], host_of: Callable[[str | None], str]
) -> tuple[list[str], list[str], dict[str, int]]:
    """The jobs answered more than once, those answered again after an answer reached a
    host, and the answered calls per host."""
    calls: dict[str, list[dict[str, Any]]] = {job: [] for job in wanted}
    calls_per_host: dict[str, int] = {}
    for record in llm_records:
        if record.get("probe") or record.get("status") != 200 or record.get("job") is None:
            continue
        calls.setdefault(str(record["job"]), []).append(record)
        host = host_of(record.get("client"))
        calls_per_host[host] = calls_per_host.get(host, 0) + 1
    recalled, after_acknowledged = [], []
    for job in wanted:
        answered = sorted(calls.get(job, []), key=lambda r: r["at"])
        if len(answered) < 2:
            continue
        recalled.append(job)
        first_ack = min((r["acked"] for r in answered if r.get("acked")), default=None)
        if first_ack is not None and any(r["at"] > first_ack for r in answered):
            after_acknowledged.append(job)
    return recalled, after_acknowledged, calls_per_host


def account(
    job_ids: list[int],
    llm_records: list[dict[str, Any]],
    core_records: list[dict[str, Any]],
    notifications: dict[str, int],
    host_of: Callable[[str | None], str],
) -> Accounting:
    """What became of ``job_ids``.

    - final state: the last state Core got; a job with none is lost;
    - conflicting: Core got two different states for it (``failed`` then ``completed``);
    - two results: Core got two different results (answers of two LLM calls);
    - recalled: the LLM answered it (HTTP 200) more than once; *after acknowledged* when
      an earlier answer had reached a worker host (its TCP acknowledgement came back)
      before the later call began: a worker had the answer and still paid again.
    """
    wanted = [str(job) for job in job_ids]
    states, lost, conflicting, two_results = _core_fates(wanted, core_records)
    recalled, after_acknowledged, calls_per_host = _llm_calls(wanted, llm_records, host_of)
    recalled_calls = {
        job: [
            (host_of(r.get("client")), r["at"], r.get("acked"))
            for r in sorted(llm_records, key=lambda r: r["at"])
            if str(r.get("job")) == job and r.get("status") == 200 and not r.get("probe")
        ]
        for job in recalled
    }
    return Accounting(
        sent=len(wanted),
        states=states,
        lost=lost,
        no_notification=[job for job in wanted if notifications.get(job, 0) == 0],
        double_notification=[job for job in wanted if notifications.get(job, 0) > 1],
        conflicting_states=conflicting,
        two_results=two_results,
        recalled=recalled,
        recalled_after_acknowledged=after_acknowledged,
        calls_per_host=calls_per_host,
        recalled_calls=recalled_calls,
    )
