"""The pytest plugin Dramatiq's tests run with (``-p tests.dramatiq_contract.plugin``) in
place of Dramatiq's own ``conftest.py``: its fixtures, built on the project's brokers.

- ``stub_broker``: :class:`~tests.dramatiq_contract.stub_view.StubViewRedisBroker`, the
  project's Redis broker with the stub broker's test API; ``redis_broker``:
  :class:`~llm_worker.broker.redis_broker.RecoveringRedisBroker`; both on the run's own
  redis-server (``LLMW_CONTRACT_REDIS_URL``), which they flush before and after each
  test as Dramatiq's fixtures flush theirs. ``rabbitmq_broker``:
  :class:`~llm_worker.broker.rabbitmq_broker.RecoveringRabbitmqBroker` on the run's own
  vhost (``LLMW_CONTRACT_AMQP_URL``). Their workers are built as Dramatiq's are.
- Where a Dramatiq test module builds a broker itself (``RedisBroker(url=...)``,
  ``RabbitmqBroker(parameters=...)``), it builds the project's class instead: the module's
  name is pointed at it for the test (:data:`BROKER_CLASSES`).
- Safety: a Redis ``FLUSHALL`` anywhere but on the run's own server raises, and a
  RabbitMQ connection that names no vhost (``RabbitmqBroker(host=...)``, a URL without
  a path) goes to the run's vhost, never to the node's default one.
- ``LLMW_CONTRACT_BROKERS=dramatiq`` builds Dramatiq's own brokers (and the stub view over
  Dramatiq's Redis broker) instead: the baseline run, which tells a test that fails on
  any Redis broker seen through the stub view from a difference of the project's.
- The tests :data:`~tests.dramatiq_contract.differences.NOT_RUN` lists are deselected;
  the outcome of every test is written as JSON to ``LLMW_CONTRACT_REPORT``
  (:mod:`tests.dramatiq_contract.runner` reads it).
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import dramatiq
import pika.connection
import pytest
import redis
from dramatiq import Worker
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.rate_limits.backends import RedisBackend as RateLimitRedisBackend
from dramatiq.results.backends import RedisBackend as ResultRedisBackend

from llm_worker.broker.rabbitmq_broker import RecoveringRabbitmqBroker
from llm_worker.broker.redis_broker import RecoveringRedisBroker
from tests.dramatiq_contract.differences import DIFFERENCES, NOT_RUN
from tests.dramatiq_contract.runner import dramatiq_test_id
from tests.dramatiq_contract.stub_view import (
    DramatiqStubViewRedisBroker,
    StubViewRedisBroker,
    _StubView,
)

#: The run's own redis-server (flushed whole, FLUSHALL, before and after each test).
REDIS_URL = os.environ.get("LLMW_CONTRACT_REDIS_URL", "")
#: The run's own RabbitMQ vhost, or empty.
AMQP_URL = os.environ.get("LLMW_CONTRACT_AMQP_URL", "")
#: Where the outcomes go (JSON).
REPORT = os.environ.get("LLMW_CONTRACT_REPORT", "")
#: ``project`` (the default): the fixtures build the project's brokers; ``dramatiq``:
#: Dramatiq's own, the baseline that shows what a test assumes of any broker.
BROKERS = os.environ.get("LLMW_CONTRACT_BROKERS", "project")
PROJECT = BROKERS == "project"

#: Per Dramatiq test module, the broker classes it names that stand for the project's.
BROKER_CLASSES: dict[str, dict[str, type]] = {
    "test_redis.py": {"RedisBroker": RecoveringRedisBroker},
    "test_rabbitmq.py": {"RabbitmqBroker": RecoveringRabbitmqBroker},
}

_outcomes: dict[str, dict[str, Any]] = {}
_deselected: list[str] = []
_collect_errors: list[str] = []


def _redis_address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 6379


def _guard_flushall() -> None:
    """Make ``FLUSHALL`` raise on any Redis but the run's own."""
    own = _redis_address(REDIS_URL)
    flushall = redis.Redis.flushall

    def guarded(self: redis.Redis, *args: Any, **kwargs: Any) -> Any:
        kwargs_ = self.connection_pool.connection_kwargs
        address = (kwargs_.get("host", "localhost"), int(kwargs_.get("port", 6379)))
        if address[1] != own[1] or address[0] not in {own[0], "localhost", "127.0.0.1"}:
            raise RuntimeError(f"FLUSHALL refused on {address}: not the run's own Redis {own}")
        return flushall(self, *args, **kwargs)

    redis.Redis.flushall = guarded


def pytest_configure(config: pytest.Config) -> None:
    """Check the run's servers are named, guard them, and log as Dramatiq's tests do."""
    if not REDIS_URL:
        raise pytest.UsageError("LLMW_CONTRACT_REDIS_URL must name the run's own redis-server")
    _guard_flushall()
    vhost = unquote(urlsplit(AMQP_URL).path[1:]) if AMQP_URL else ""
    # Connections that name no vhost take the class default: point it at the run's own.
    pika.connection.Parameters.DEFAULT_VIRTUAL_HOST = vhost or "llmw-contract-no-vhost"
    logging.basicConfig(
        level=logging.INFO,
        format="[%(asctime)s] [%(threadName)s] [%(name)s] [%(levelname)s] %(message)s",
    )
    logging.getLogger("pika").setLevel(logging.WARNING)
    random.seed(1337)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the tests :data:`~tests.dramatiq_contract.differences.NOT_RUN` lists."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        (dropped if dramatiq_test_id(item.nodeid) in NOT_RUN else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        _deselected.extend(dramatiq_test_id(item.nodeid) for item in dropped)
        items[:] = kept


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """Note a module that could not be collected."""
    if report.failed:
        _collect_errors.append(f"{report.nodeid}: {report.longreprtext}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Note each test's outcome: failed in its call, an error in its set-up or teardown,
    skipped, or passed."""
    entry = _outcomes.setdefault(
        dramatiq_test_id(report.nodeid), {"outcome": "passed", "details": "", "seconds": 0.0}
    )
    entry["seconds"] += report.duration
    if report.failed:
        if entry["outcome"] not in {"failed", "error"}:
            entry["outcome"] = "failed" if report.when == "call" else "error"
        entry["details"] += f"[{report.when}] {report.longreprtext}\n"
    elif report.skipped and entry["outcome"] == "passed":
        entry["outcome"] = "skipped"
        entry["details"] = str(report.longrepr)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the outcomes to ``LLMW_CONTRACT_REPORT``."""
    if REPORT:
        Path(REPORT).write_text(
            json.dumps(
                {
                    "tests": _outcomes,
                    "deselected": _deselected,
                    "collect_errors": _collect_errors,
                },
                indent=1,
            )
        )


@pytest.fixture(autouse=True)
def _project_broker_classes(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Point the broker classes a Dramatiq test module names at the project's."""
    module = getattr(request, "module", None)
    if not PROJECT:
        return
    for name, cls in BROKER_CLASSES.get(Path(getattr(module, "__file__", "")).name, {}).items():
        monkeypatch.setattr(module, name, cls)


def _boot(broker: dramatiq.Broker) -> None:
    broker.emit_after("process_boot")
    dramatiq.set_broker(broker)


@pytest.fixture
def stub_broker(request: pytest.FixtureRequest) -> Iterator[_StubView]:
    """The project's Redis broker with the stub broker's test API, on an empty Redis."""
    view = StubViewRedisBroker if PROJECT else DramatiqStubViewRedisBroker
    broker = view(url=REDIS_URL)
    difference = DIFFERENCES.get(dramatiq_test_id(request.node.nodeid))
    if difference is not None and difference.join_timeout_seconds is not None:
        broker.join_timeout_ms = int(difference.join_timeout_seconds * 1000)
    broker.client.flushall()
    _boot(broker)
    yield broker
    broker.flush_all()
    broker.client.flushall()
    broker.close()


@pytest.fixture
def redis_broker() -> Iterator[RedisBroker]:
    """The project's Redis broker, on an empty Redis."""
    broker = (RecoveringRedisBroker if PROJECT else RedisBroker)(url=REDIS_URL)
    broker.client.flushall()
    _boot(broker)
    yield broker
    broker.client.flushall()
    broker.close()


@pytest.fixture
def rabbitmq_broker() -> Iterator[RabbitmqBroker]:
    """The project's RabbitMQ broker on the run's vhost, with priorities up to 10."""
    if not AMQP_URL:
        pytest.skip("no RabbitMQ vhost of the run's own (LLMW_CONTRACT_AMQP_URL)")
    broker = (RecoveringRabbitmqBroker if PROJECT else RabbitmqBroker)(
        url=AMQP_URL, max_priority=10
    )
    broker.connection  # noqa: B018 - connects now: a node that is not there fails here
    _boot(broker)
    yield broker
    broker.flush_all()
    broker.close()


@pytest.fixture
def stub_worker(stub_broker: _StubView) -> Iterator[Worker]:
    """A worker of 32 threads on ``stub_broker``, polling every 100 ms."""
    worker = Worker(stub_broker, worker_timeout=100, worker_threads=32)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def redis_worker(redis_broker: RedisBroker) -> Iterator[Worker]:
    """A worker of 32 threads on ``redis_broker``."""
    worker = Worker(redis_broker, worker_threads=32)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def rabbitmq_worker(rabbitmq_broker: RabbitmqBroker) -> Iterator[Worker]:
    """A worker of 32 threads on ``rabbitmq_broker``."""
    worker = Worker(rabbitmq_broker, worker_threads=32)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def redis_result_backend() -> ResultRedisBackend:
    """A Redis result backend on the run's own (flushed) Redis."""
    backend = ResultRedisBackend(url=REDIS_URL)
    backend.client.flushall()
    return backend


@pytest.fixture(params=["redis"])
def result_backend(redis_result_backend: ResultRedisBackend) -> ResultRedisBackend:
    """The result backend of a test: Redis only (Dramatiq's also run theirs on memcached
    and in memory; the broker under test is the same)."""
    return redis_result_backend


@pytest.fixture(params=["redis"])
def rate_limiter_backend() -> RateLimitRedisBackend:
    """The rate limiter backend of a test: Redis only, on the run's own (flushed) Redis."""
    backend = RateLimitRedisBackend(url=REDIS_URL)
    backend.client.flushall()
    return backend


@pytest.fixture
def info_logging() -> Iterator[None]:
    """The root logger at INFO for the test."""
    logger = logging.getLogger()
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(logging.DEBUG)
