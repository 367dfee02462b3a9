"""Helpers the tests import: waiting on conditions, reading what jobs left in Redis,
running the ``llm-worker`` command and producers in their own processes, git
repositories, and a redis-server of a test's own.

Importing this module changes nothing: the test environment itself is set by
``tests/conftest.py`` (:func:`suite_environment`, applied in ``pytest_configure``).
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import redis

#: The checkout the tests run from; worker and producer subprocesses run there.
ROOT = Path(__file__).resolve().parent.parent
#: This process's pytest-xdist worker (``gw0``, ``gw1``...; empty in a run without xdist)
#: and its number (0 without xdist). xdist sets the variable before conftest is imported.
WORKER_ID = os.environ.get("PYTEST_XDIST_WORKER", "")
WORKER_INDEX = int(WORKER_ID[2:]) if WORKER_ID.startswith("gw") else 0
#: The run's id, the same in each of its xdist workers.
RUN_ID = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex
#: The Redis database of the first worker (``LLMW_TEST_REDIS_URL``, default database 1);
#: worker N owns and flushes the database N after it. Never database 0.
BASE_REDIS_URL = os.environ.get("LLMW_TEST_REDIS_URL", "redis://127.0.0.1:6379/1")
#: The RabbitMQ server of the tests (``LLMW_TEST_AMQP_URL``); each worker makes a vhost of
#: its own there (:func:`add_amqp_vhost`).
BASE_AMQP_URL = os.environ.get("LLMW_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
#: The smallest file that passes for a PNG image.
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def redis_db_url(base: str, offset: int) -> str:
    """``base`` with its database number (1 when it names none) moved ``offset`` further.

    Raises:
      RuntimeError: when ``base`` names database 0.
    """
    parts = urlsplit(base)
    number = parts.path.strip("/") or "1"
    if not number.isdigit() or int(number) == 0:
        raise RuntimeError(f"LLMW_TEST_REDIS_URL must name a database other than 0: {base}")
    return urlunsplit(parts._replace(path=f"/{int(number) + offset}"))


#: The Redis database this worker owns and flushes.
TEST_REDIS_URL = redis_db_url(BASE_REDIS_URL, WORKER_INDEX)


def suite_environment(scratch: Path) -> dict[str, str]:
    """The variables every test process and subprocess runs with: the worker's test
    Redis, short timeouts and retry backoffs, metrics off (tests that need them turn them
    on), and Dramatiq's wait before a paused or disconnected consumer starts again (3 s by
    default: every breaker pause and resume, every Redis outage would wait it out).
    Liveness files and Prometheus' multiprocess files go to the worker's own ``scratch``
    folder, so no other test run sees them."""
    return {
        "dramatiq_restart_delay": "100",
        "dramatiq_prom_db": str(scratch / "prometheus"),
        "LIVENESS_DIR": str(scratch / "liveness"),
        "REDIS_URL": TEST_REDIS_URL,
        "LLM_TIMEOUT_SECONDS": "5",
        "CORE_TIMEOUT_SECONDS": "5",
        "JOB_MAX_RETRIES": "2",
        "JOB_RETRY_MIN_BACKOFF_SECONDS": "0.05",
        "JOB_RETRY_MAX_BACKOFF_SECONDS": "0.1",
        "LLM_RETRY_BACKOFF_SECONDS": "0.05",
        "METRICS_ENABLED": "false",
    }


def check_test_redis_url(url: str = TEST_REDIS_URL) -> None:
    """Refuse a test Redis URL that points at database 0 (or at none: that is 0).

    Raises:
      RuntimeError: when it does.
    """
    number = urlsplit(url).path.strip("/")
    if not number.isdigit() or int(number) == 0:
        raise RuntimeError(f"the test Redis URL must name a database other than 0: {url}")


# -- RabbitMQ ----------------------------------------------------------------------------


def amqp_vhost_name() -> str:
    """The vhost of this worker in this run: unique to both."""
    return f"llmw-test-{RUN_ID[:12]}-{WORKER_ID or 'main'}"


def amqp_url(vhost: str, base: str = BASE_AMQP_URL) -> str:
    """``base`` (an ``amqp://`` URL) on ``vhost`` instead of its own."""
    return urlunsplit(urlsplit(base)._replace(path="/" + quote(vhost, safe="")))


def add_amqp_vhost(vhost: str, base: str = BASE_AMQP_URL) -> bool:
    """Create ``vhost`` on the RabbitMQ node of ``base`` and let its user in, with
    ``rabbitmqctl`` (as root, as in CI) or else the management API; whether either did."""
    user = urlsplit(base).username or "guest"
    steps = [["add_vhost", vhost], ["set_permissions", "-p", vhost, user, ".*", ".*", ".*"]]
    if _rabbitmqctl(*steps):
        return True
    return _management(base, "PUT", f"vhosts/{quote(vhost, safe='')}", {}) and _management(
        base,
        "PUT",
        f"permissions/{quote(vhost, safe='')}/{quote(user, safe='')}",
        {"configure": ".*", "write": ".*", "read": ".*"},
    )


def delete_amqp_vhost(vhost: str, base: str = BASE_AMQP_URL) -> None:
    """Delete ``vhost`` and every queue in it (best effort)."""
    if not _rabbitmqctl(["delete_vhost", vhost]):
        _management(base, "DELETE", f"vhosts/{quote(vhost, safe='')}", None)


def _rabbitmqctl(*steps: list[str]) -> bool:
    command = shutil.which("rabbitmqctl")
    if command is None:
        return False
    for step in steps:
        try:
            done = subprocess.run([command, "-q", *step], capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return False
        if done.returncode != 0:
            return False
    return True


def _management(base: str, method: str, path: str, body: dict[str, str] | None) -> bool:
    import requests

    parts = urlsplit(base)
    auth = (parts.username or "guest", parts.password or "guest")
    url = f"http://{parts.hostname or '127.0.0.1'}:15672/api/{path}"
    try:
        reply = requests.request(method, url, json=body, auth=auth, timeout=10)
    except requests.RequestException:
        return False
    return reply.ok


# -- waiting -----------------------------------------------------------------------------


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def drain(worker: Any, *queues: str, timeout: float = 20.0) -> None:
    """Wait until ``queues`` (default: every declared queue) and their delay queues are
    empty and the in-process ``worker`` (on a Redis broker) is idle, again and again
    while the messages it finished sent new ones there (a review's turns between its
    queues); fail after ``timeout`` seconds."""
    broker = worker.broker
    names = queues or tuple(broker.get_declared_queues())
    deadline = time.monotonic() + timeout
    while True:
        for queue in names:
            left_ms = max(1, int((deadline - time.monotonic()) * 1000))
            broker.join(queue, interval=20, timeout=left_ms)
        worker.join()
        if all(broker.do_qsize(queue) == 0 for queue in names):  # Dramatiq's join reads it
            return


@contextlib.contextmanager
def running_worker(
    broker: Any, *, threads: int, timeout_ms: int = 100, queues: set[str] | None = None
) -> Iterator[Any]:
    """A real Dramatiq worker on ``broker`` in this process (on ``queues`` only, if given),
    for the ``with`` block; once stopped, the middleware it added to the broker (its own,
    e.g. ``CurrentMessage``'s worker hooks) are taken off again so the next worker starts
    clean."""
    from dramatiq import Worker

    worker = Worker(broker, worker_threads=threads, worker_timeout=timeout_ms, queues=queues)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        broker.middleware[:] = [
            m for m in broker.middleware if getattr(m, "worker", None) is not worker
        ]


def log_says(path: Path, text: str, count: int = 1) -> bool:
    """Whether the log file at ``path`` holds ``text`` at least ``count`` times."""
    return path.exists() and path.read_text().count(text) >= count


# -- what jobs left behind ---------------------------------------------------------------------


def usage(calls: int, model: str = "mistral") -> dict[str, Any]:
    """The usage Core gets after ``calls`` answers of the fake LLM (11 + 7 tokens each, none
    cached), the last from the primary's ``model``, with no price table (every call
    unpriced)."""
    counts = {
        "prompt_tokens": 11 * calls,
        "completion_tokens": 7 * calls,
        "cached_tokens": 0,
        "attempts": calls,
    }
    if not calls:
        return counts
    return {**counts, "model": model, "served_by": "primary", "unpriced_calls": calls}


def send_unchecked(actor: Any, *args: Any, **kwargs: Any) -> Any:
    """Enqueue a job as a producer that bypasses the send-time check would."""
    from llm_worker.broker.outbound import send_message

    return send_message(actor.queue_name, actor.actor_name, args, kwargs)


def scrape_metrics(port: int, *wanted: str) -> str | None:
    """The Prometheus text a worker serves on ``port``, once it holds every one of
    ``wanted``; ``None`` before (or while the endpoint does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text: str = reply.read().decode()
    except OSError:
        return None
    return text if all(line in text for line in wanted) else None


def notifications(client: redis.Redis, stream: str = "notify:telegram") -> list[dict[str, Any]]:
    """The decoded ``data`` of every entry on the notification stream."""
    return [json.loads(fields[b"data"]) for _, fields in client.xrange(stream)]


def dead_letters(client: redis.Redis, queue: str) -> list[str]:
    """Dramatiq message ids in a queue's dead-letter queue."""
    return [json.loads(data)["message_id"] for data in client.hvals(f"dramatiq:{queue}.XQ.msgs")]


# -- what the fakes were asked -------------------------------------------------------------


def llm_probes(fake_llm: Any) -> list[dict[str, Any]]:
    """The breaker's probes among the fake LLM's chat requests (``max_tokens`` 1)."""
    return [r for r in fake_llm.chat_requests() if r["json"].get("max_tokens") == 1]


def llm_job_calls(fake_llm: Any) -> list[dict[str, Any]]:
    """The fake LLM's chat requests that jobs made (every one but the probes)."""
    return [r for r in fake_llm.chat_requests() if r["json"].get("max_tokens") != 1]


def jobs_completed(fake_core: Any, job_ids: Any) -> bool:
    """Whether the last state the fake Core got for each of ``job_ids`` is completed."""
    updates = {r["path"]: r["json"]["status"] for r in fake_core.requests if r["method"] == "PATCH"}
    return all(updates.get(f"/jobs/{job_id}") == "completed" for job_id in job_ids)


def accepted_states(fake_core: Any, job_id: Any) -> list[str]:
    """The job states the fake Core accepted (answered 2xx to), in order."""
    with fake_core.lock:
        return [
            r["json"]["status"]
            for r in fake_core.requests
            if r["method"] == "PATCH"
            and r["path"] == f"/jobs/{job_id}"
            and r.get("status", 999) < 300
        ]


def http_date(seconds_from_now: float) -> str:
    """An HTTP date (as in ``Retry-After``) ``seconds_from_now`` from now."""
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


# -- other processes -------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_port() -> int:
    """A free TCP port on 127.0.0.1 below the kernel's ephemeral range, for a server a test
    stops and starts again while its clients reconnect.

    A port from :func:`free_port` is an ephemeral one: while the server is down, a client's
    own outgoing connection (even one to that very port, a TCP self-connect) may take it,
    and the server cannot listen on it again.
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(10_000, max(10_001, low))
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def run_cli(cli_env: dict[str, str], *args: str, timeout: float = 120, **env: str) -> Any:
    """Run ``llm-worker ARGS`` in its own process; return the completed process (text)."""
    return subprocess.run(
        [sys.executable, "-m", "console.cli", *args],
        cwd=ROOT,
        env={**cli_env, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def produce(cli_env: dict[str, str], code: str) -> None:
    """Run ``code`` as a producer in its own Python process."""
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=cli_env, check=True, timeout=60)


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """Kill the process groups of those ``processes`` still running (a worker CLI and its
    children) and reap them: a test that needs a graceful stop makes it itself."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                os.killpg(process.pid, signal.SIGKILL)
    for process in processes:
        process.wait(timeout=30)


# -- git ---------------------------------------------------------------------------------

APP_PY = """import os


def load_config(path):
    with open(path) as handle:
        return handle.read()


def total(items):
    result = 0
    for item in items:
        result += item.price
    return result
"""

APP_PY_CHANGED = """import os


def load_config(path):
    handle = open(path)
    return handle.read()


def total(items):
    result = 0
    for item in items:
        result += item.price * item.quantity
    return result


def discount(total, percent):
    return total - total * percent / 100
"""


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo``; return its output."""
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def make_git_repo(repo: Path) -> Path:
    """A git repository at ``repo`` with one commit on ``main`` (app.py, README.md) and
    uncommitted changes to app.py."""
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "test@example.invalid")
    git(repo, "config", "user.name", "Test")
    (repo / "app.py").write_text(APP_PY)
    (repo / "README.md").write_text("# demo\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "initial")
    (repo / "app.py").write_text(APP_PY_CHANGED)
    return repo


def app_diff(repo: Path) -> str:
    """The unified diff of app.py in ``repo`` against ``main``, from its ``---`` line."""
    full = git(repo, "diff", "--no-color", "main", "--", "app.py")
    return full[full.index("--- a/") :]


# -- a Redis of a test's own ---------------------------------------------------------------------


class RedisServer:
    """A redis-server of a test's own on a free port, AOF on, data in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.port = server_port()  # restarted while clients reconnect
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.command = [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--dir",
            str(folder),
        ]
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        """Start it (again, with its data) and wait until it answers."""
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis(port=self.port)
        wait_for(lambda: _pings(client), timeout=30)
        client.close()

    def stop(self) -> None:
        """Stop it (SIGTERM: the AOF is written); connections are refused until :meth:`start`."""
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
            self.process = None

    def restart(self) -> None:
        """Stop, wait a second, start."""
        self.stop()
        time.sleep(1)
        self.start()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def amqp_answers(url: str) -> bool:
    """Whether a RabbitMQ node accepts an AMQP connection at ``url`` now."""
    import pika

    try:
        pika.BlockingConnection(pika.URLParameters(url)).close()
    except Exception:
        return False
    return True
