"""Fixtures: the tests' own Redis database, fake LLM and Core servers, a real worker.

The suite runs in parallel under pytest-xdist, each worker isolated from the others and
from other runs on the machine: worker N owns and flushes the Redis database N after
the one ``LLMW_TEST_REDIS_URL`` names (default ``redis://127.0.0.1:6379/1``, so
databases 1, 2...; never database 0), makes a RabbitMQ vhost of its own named after the
run (on ``LLMW_TEST_AMQP_URL``'s node), and keeps liveness and Prometheus files in a
folder of its own. Servers of the tests' own take free ports.
The environment they run with (:func:`tests.support.suite_environment`) is set in
``pytest_configure``, before any test module imports Dramatiq (which reads its own
settings at import) or :mod:`actors` (which reads ``REDIS_URL`` for its broker), and
put back in ``pytest_unconfigure``; this module imports neither at its top. Helpers
live in :mod:`tests.support`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis

from llm_worker.testing.fakes import FakeCore, FakeLLM, Reply
from tests.support import (
    BASE_AMQP_URL,
    PNG_BYTES,
    ROOT,
    TEST_REDIS_URL,
    WORKER_ID,
    RedisServer,
    add_amqp_vhost,
    amqp_answers,
    amqp_url,
    amqp_vhost_name,
    check_test_redis_url,
    delete_amqp_vhost,
    make_git_repo,
    running_worker,
    server_port,
    stop_processes,
    suite_environment,
    wait_for,
)

if TYPE_CHECKING:  # importing them imports Dramatiq, which reads its settings then
    from llm_worker.services import Services

_saved_environment: dict[str, str | None] = {}
#: This process's folder for liveness and Prometheus files, removed at its end.
_scratch: list[Path] = []
#: How often the in-process worker's threads look for work and for a stop, in ms.
WORKER_TIMEOUT_MS = 20


def pytest_configure(config: pytest.Config) -> None:
    check_test_redis_url()
    scratch = Path(tempfile.mkdtemp(prefix=f"llmw-test-{WORKER_ID or 'main'}-"))
    _scratch.append(scratch)
    variables: dict[str, str | None] = {**suite_environment(scratch), "BROKER_URL": None}
    for name, value in variables.items():
        _saved_environment[name] = os.environ.get(name)
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


#: Fixtures that reach a service (the test Redis, RabbitMQ, a worker process): a test
#: that uses one is an ``integration`` test, and never a ``unit`` test.
SERVICE_FIXTURES = frozenset(
    {
        "redis_client",
        "env",
        "worker",
        "cli_env",
        "start_worker",
        "redis_server",
        "own_redis",
        "own_rabbitmq",
        "rabbitmq_url",
    }
)
UNIT_TESTS = Path(__file__).resolve().parent / "unit"
#: What makes a test long, longest first: a marker, or a fixture (a RabbitMQ node or a
#: redis-server of its own that it restarts; a worker process). Under pytest-xdist the
#: run hands out the long tests first, one to each worker, and ends on short ones.
LONG_FIRST: tuple[tuple[str, ...], ...] = (
    ("slow",),
    ("chaos",),
    ("own_rabbitmq", "redis_server", "own_redis"),
    ("cli", "start_worker"),
    ("integration",),
)
#: The number of pytest-xdist workers (0 without xdist).
WORKER_COUNT = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))


@pytest.hookimpl(tryfirst=True)  # before ``-m`` selects on the markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests under tests/unit/ ``unit`` and those that use a service
    ``integration``, refuse a unit test that uses a service, and put long tests first."""
    for item in items:
        services = sorted(SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())))
        if UNIT_TESTS in item.path.parents:
            item.add_marker(pytest.mark.unit)
        if item.get_closest_marker("unit") is not None:
            if services:
                raise pytest.UsageError(f"{item.nodeid}: a unit test uses {', '.join(services)}")
        elif services:
            item.add_marker(pytest.mark.integration)
    items.sort(key=_start_rank)  # stable: the file order within each rank
    items[:] = _first_pairs(items, WORKER_COUNT)


def _first_pairs(items: list[pytest.Item], workers: int) -> list[pytest.Item]:
    """``items`` (longest first) with each of the first ``workers`` pairs made of a long
    test and one of the shortest.

    With ``--maxschedchunk 1`` xdist sends each worker two tests to begin with, the
    collection's first pair to the first worker and so on, then one more each time one
    ends: the second test of a pair waits for the first, so it had better be short.
    """
    if workers < 2 or len(items) < 2 * workers:
        return items
    long, short = items[:workers], items[len(items) - workers :][::-1]
    pairs = [item for pair in zip(long, short, strict=True) for item in pair]
    return pairs + items[workers : len(items) - workers]


def _start_rank(item: pytest.Item) -> int:
    fixtures = set(getattr(item, "fixturenames", ()))
    for rank, names in enumerate(LONG_FIRST):
        if any(item.get_closest_marker(name) is not None or name in fixtures for name in names):
            return rank
    return len(LONG_FIRST)


def pytest_unconfigure(config: pytest.Config) -> None:
    for name, value in _saved_environment.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _saved_environment.clear()
    for folder in _scratch:
        shutil.rmtree(folder, ignore_errors=True)
    _scratch.clear()


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeLLM]:
    server = FakeLLM(server_port())  # tests take it down and up while workers reconnect
    yield server
    server.down()


@pytest.fixture(scope="session")
def fake_core() -> Iterator[FakeCore]:
    server = FakeCore(server_port())
    yield server
    server.down()


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """The URL of this worker's own RabbitMQ vhost, deleted with its queues at the end.

    Where the vhost cannot be made (no ``rabbitmqctl`` as root, no management API) it is
    the vhost of ``LLMW_TEST_AMQP_URL`` itself, which the run then shares."""
    vhost = amqp_vhost_name()
    if not add_amqp_vhost(vhost):
        yield BASE_AMQP_URL
        return
    yield amqp_url(vhost)
    delete_amqp_vhost(vhost)


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
    from llm_worker.services import reset_services, services

    if fake_llm._server is None:
        fake_llm.up()
    with fake_llm.lock:  # an answer a past test left sleeping is not in flight for this one
        for request in fake_llm.requests:
            request.pop("counted", None)
        fake_llm.in_flight = 0
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
def worker(env: Callable[..., Services]) -> Iterator[Any]:
    """A real Dramatiq worker on the actors' broker, in this process."""
    import actors

    with running_worker(actors.broker, threads=4, timeout_ms=WORKER_TIMEOUT_MS) as worker:
        yield worker


@pytest.fixture
def git_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with one commit on ``main`` and uncommitted changes to app.py."""
    repo = make_git_repo(tmp_path / "repo")
    monkeypatch.setenv("GIT_REPO_PATH", str(repo))
    return repo


@pytest.fixture(scope="session")
def git_actors() -> None:
    """The reference git worker's actors, declared on the actors' broker once."""
    import actors
    from gitworker.handlers import declare

    if "fetch_context" not in actors.broker.actors:
        declare(actors.broker)


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
    env), with `gevent=True` through Dramatiq's `dramatiq-gevent`, each in its own process
    group; those still running after the test are killed with their children (a test that
    proves a graceful stop sends the signal and waits itself)."""
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
            start_new_session=True,
        )
        started.append(process)
        return process

    yield start
    stop_processes(started)
    for log in logs:
        log.close()


@pytest.fixture
def redis_server(tmp_path):
    """A :class:`~tests.support.RedisServer` of the test's own, stopped after the test."""
    server = RedisServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def own_redis(redis_server):
    """``(url, restart)`` of a redis-server of the test's own."""
    return redis_server.url, redis_server.restart


@pytest.fixture
def own_rabbitmq(tmp_path):
    """A RabbitMQ node of the test's own on free ports, its data in a temporary folder."""
    port, dist_port = server_port(), server_port()  # restarted while clients reconnect
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
        wait_for(lambda: amqp_answers(url), timeout=90, interval=0.5)
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
