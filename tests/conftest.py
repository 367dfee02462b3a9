"""Fixtures: the tests' own Redis database, fake LLM and Core servers, a real worker.

Tests use the Redis database ``LLMW_TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379/13``), which they own and flush; never database 0.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

TEST_REDIS_URL = os.environ.get("LLMW_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
if TEST_REDIS_URL.rstrip("/").endswith("/0"):
    raise RuntimeError("LLMW_TEST_REDIS_URL must not point at Redis database 0")

os.environ.update(
    {
        "REDIS_URL": TEST_REDIS_URL,
        "LLM_TIMEOUT_SECONDS": "5",
        "CORE_TIMEOUT_SECONDS": "5",
        "JOB_MAX_RETRIES": "2",
        "JOB_RETRY_MIN_BACKOFF_SECONDS": "0.05",
        "JOB_RETRY_MAX_BACKOFF_SECONDS": "0.1",
        "LLM_RETRY_BACKOFF_SECONDS": "0.05",
        "METRICS_ENABLED": "false",
    }
)
os.environ.pop("BROKER_URL", None)

from dramatiq import Worker  # noqa: E402

import actors  # noqa: E402
from llm_worker.fakes import FakeCore, FakeLLM, Reply  # noqa: E402
from llm_worker.services import Services, reset_services, services  # noqa: E402

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeLLM]:
    server = FakeLLM()
    yield server
    server.down()


@pytest.fixture(scope="session")
def fake_core() -> Iterator[FakeCore]:
    server = FakeCore()
    yield server
    server.down()


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    root.mkdir()
    (root / "cat.png").write_bytes(PNG_BYTES)
    return root


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch,
    fake_llm: FakeLLM,
    fake_core: FakeCore,
    redis_client: redis.Redis,
    image_dir: Path,
) -> Iterator[Callable[..., Services]]:
    """Point the settings at the fakes; call it with overrides (``NAME=value``)."""
    if fake_llm._server is None:
        fake_llm.up()
    fake_llm.clear()
    fake_llm.script.clear()
    fake_llm.answers.clear()
    fake_llm.fallback = None
    fake_llm.serves_tokenize = False
    fake_llm.concurrency_limit = 0
    fake_llm.busy_reply = Reply(status=429, body={"error": {"message": "server busy"}})
    fake_llm.reset_counters()
    fake_llm.tokenize_delay = 0.0
    fake_core.clear()
    fake_core.tasks.clear()
    fake_core.failures.clear()
    fake_core.delay = 0.0
    monkeypatch.setenv("LLM_BASE_URL", fake_llm.base_url)
    monkeypatch.setenv("CORE_API_URL", fake_core.url)
    monkeypatch.setenv("IMAGE_STORAGE_PATH", str(image_dir))

    def configure(**overrides: Any) -> Services:
        for name, value in overrides.items():
            monkeypatch.setenv(name, str(value))
        reset_services()
        return services()

    configure()
    yield configure
    reset_services()


@pytest.fixture
def worker(env: Callable[..., Services]) -> Iterator[Worker]:
    """A real Dramatiq worker on the actors' broker, in this process."""
    worker = Worker(actors.broker, worker_threads=4, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop()
    actors.broker.middleware[:] = [
        m for m in actors.broker.middleware if getattr(m, "worker", None) is not worker
    ]


def usage(calls: int, model: str = "mistral") -> dict[str, Any]:
    """The usage Core gets after ``calls`` answers of the fake LLM (11 + 7 tokens each),
    the last from the primary's ``model``."""
    counts = {"prompt_tokens": 11 * calls, "completion_tokens": 7 * calls, "attempts": calls}
    return {**counts, "model": model, "served_by": "primary"} if calls else counts


def send_unchecked(actor: Any, *args: Any, **kwargs: Any) -> Any:
    """Enqueue a job as a producer that bypasses the send-time check would."""
    from llm_worker.outbound import send_message

    return send_message(actor.queue_name, actor.actor_name, args, kwargs)


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def drain(worker: Worker, *queues: str, timeout: float = 20.0) -> None:
    """Wait until ``queues`` (and their delay queues) are empty and the worker is idle."""
    for queue in queues or tuple(actors.broker.get_declared_queues()):
        actors.broker.join(queue, timeout=int(timeout * 1000))
    worker.join()


def notifications(client: redis.Redis, stream: str = "notify:telegram") -> list[dict[str, Any]]:
    """The decoded ``data`` of every entry on the notification stream."""
    import json

    return [json.loads(fields[b"data"]) for _, fields in client.xrange(stream)]


def dead_letters(client: redis.Redis, queue: str) -> list[str]:
    """Dramatiq message ids in a queue's dead-letter queue."""
    import json

    return [json.loads(data)["message_id"] for data in client.hvals(f"dramatiq:{queue}.XQ.msgs")]


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
    import subprocess

    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.fixture
def git_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with one commit on ``main`` and uncommitted changes to app.py."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "test@example.invalid")
    git(repo, "config", "user.name", "Test")
    (repo / "app.py").write_text(APP_PY)
    (repo / "README.md").write_text("# demo\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "initial")
    (repo / "app.py").write_text(APP_PY_CHANGED)
    monkeypatch.setenv("GIT_REPO_PATH", str(repo))
    return repo


@pytest.fixture(scope="session")
def git_actors() -> None:
    """The reference git worker's actors, declared on the actors' broker once."""
    from gitworker.handlers import declare

    if "fetch_context" not in actors.broker.actors:
        declare(actors.broker)


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cli_env(env, fake_llm, fake_core, image_dir) -> dict[str, str]:
    """The environment of worker and producer subprocesses: the fakes and the test Redis."""
    return {
        **os.environ,
        "REDIS_URL": TEST_REDIS_URL,
        "LLM_BASE_URL": fake_llm.base_url,
        "CORE_API_URL": fake_core.url,
        "IMAGE_STORAGE_PATH": str(image_dir),
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture
def start_worker(cli_env, tmp_path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `dramatiq MODULE` subprocesses (default `actors`; extra CLI arguments, extra
    env), with `gevent=True` through Dramatiq's `dramatiq-gevent`; stopped after the test."""
    from console.ops.supervisor import worker_command

    started: list[subprocess.Popen[bytes]] = []
    logs = []

    def start(
        *args: str,
        module: str = "actors",
        gevent: bool = False,
        preexec: Callable[[], None] | None = None,
        **env: str,
    ) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"worker{len(started)}.log").open("wb")
        logs.append(log)
        command = worker_command(sys.executable, processes=1, threads=1, gevent=gevent)
        launcher = command[: command.index("actors")]
        process = subprocess.Popen(
            [*launcher, module, *args],
            cwd=ROOT,
            env={**cli_env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    for log in logs:
        log.close()


def app_diff(repo: Path) -> str:
    """The unified diff of app.py in ``repo`` against ``main``, from its ``---`` line."""
    full = git(repo, "diff", "--no-color", "main", "--", "app.py")
    return full[full.index("--- a/") :]


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


class RedisServer:
    """A redis-server of a test's own on a free port, AOF on, data in ``folder``."""

    def __init__(self, folder: Path) -> None:
        from console.local_llm import free_port

        self.port = free_port()
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


@pytest.fixture
def redis_server(tmp_path):
    """A :class:`RedisServer` of the test's own, stopped after the test."""
    server = RedisServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def own_redis(redis_server):
    """``(url, restart)`` of a redis-server of the test's own."""
    return redis_server.url, redis_server.restart


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@pytest.fixture
def own_rabbitmq(tmp_path):
    """A RabbitMQ node of the test's own on free ports, its data in a temporary folder."""
    from console.local_llm import free_port

    port, dist_port = free_port(), free_port()
    home = tmp_path / "rabbitmq"
    (home / "mnesia").mkdir(parents=True)
    (home / "log").mkdir()
    (home / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{port}\n")
    (home / "env.conf").write_text("")
    (home / "enabled_plugins").write_text("[].\n")
    env = {
        **os.environ,
        "RABBITMQ_NODENAME": f"llmwtest{port}@localhost",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq.conf"),
        "RABBITMQ_CONF_ENV_FILE": str(home / "env.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
        "RABBITMQ_LOG_BASE": str(home / "log"),
        "RABBITMQ_PID_FILE": str(home / "pid"),
    }
    # The server script itself (not Debian's wrapper, which switches to the rabbitmq user).
    command = ["/usr/lib/rabbitmq/bin/rabbitmq-server"]
    url = f"amqp://guest:guest@127.0.0.1:{port}/%2F"

    def start():
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(lambda: _amqp_answers(url), timeout=90, interval=0.5)
        return process

    def stop(process):
        process.send_signal(signal.SIGTERM)  # the script stops the node cleanly
        process.wait(timeout=60)

    state = {"process": start()}

    def restart():
        stop(state["process"])
        state["process"] = start()

    yield url, restart
    stop(state["process"])


def _amqp_answers(url):
    import pika

    try:
        pika.BlockingConnection(pika.URLParameters(url)).close()
    except Exception:
        return False
    return True
