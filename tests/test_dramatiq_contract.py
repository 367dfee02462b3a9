"""Dramatiq's own broker, actor and worker tests, from the installed Dramatiq's source
distribution, pass against the project's brokers, but for the differences listed in
:mod:`tests.dramatiq_contract.differences`, which fail as listed.

Each test runs one group of Dramatiq's test modules in a pytest subprocess
(:mod:`tests.dramatiq_contract.runner`) on a redis-server of its own and, for RabbitMQ,
on a vhost of its own, so the groups spread over the suite's xdist workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dramatiq_contract import runner
from tests.dramatiq_contract.differences import RABBITMQ_FILES, REDIS_FILES, STUB_VIEW_FILES
from tests.support import RedisServer, add_amqp_vhost, amqp_url, amqp_vhost_name, delete_amqp_vhost

#: Seconds a group may take (each takes under a minute on an idle 2-core machine).
RUN_TIMEOUT_SECONDS = 150


@pytest.fixture
def contract_vhost() -> Iterator[str]:
    """The URL of a RabbitMQ vhost of the test's own, deleted with its queues after it."""
    vhost = f"{amqp_vhost_name()}-dramatiq"
    if not add_amqp_vhost(vhost):
        pytest.skip(
            "no RabbitMQ vhost can be made here (rabbitmqctl as root, or the management API)"
        )
    yield amqp_url(vhost)
    delete_amqp_vhost(vhost)


#: Dramatiq's tests carry wall-clock bounds written for an idle machine (a retry within
#: 2.2 s); up to this many tests that fail unexpectedly run once more, alone, and only a
#: second failure counts.
RERUN_AT_MOST = 3


def _run_and_check(files: tuple[str, ...], workdir: Path, **options: str) -> None:
    report = runner.run(files, workdir=workdir / "run", timeout=RUN_TIMEOUT_SECONDS, **options)
    failed = runner.unexpected_failures(report)
    if failed and len(failed) <= RERUN_AT_MOST and not report.collect_errors:
        again = runner.run(
            files, workdir=workdir / "rerun", timeout=RUN_TIMEOUT_SECONDS, only=failed, **options
        )
        report.tests.update({name: again.tests[name] for name in failed if name in again.tests})
    _check(files, report)


def _check(files: tuple[str, ...], report: runner.Report) -> None:
    problems = runner.mismatches(report, files)
    assert report.tests, f"no test ran (exit {report.returncode}):\n{report.output[-4000:]}"
    assert not problems, "\n\n".join(problems)
    assert report.returncode in (0, 1), report.output[-4000:]


def test_every_dramatiq_test_module_is_run_or_set_aside() -> None:
    if not runner.upstream_tests().is_dir():
        pytest.fail(f"{runner.upstream_tests()} is missing: run scripts/fetch-dramatiq-tests.sh")
    assert runner.unsorted_modules() == []


@pytest.mark.timeout(RUN_TIMEOUT_SECONDS + 90)  # a run, and a short one again
@pytest.mark.parametrize(
    "files", [STUB_VIEW_FILES, REDIS_FILES], ids=["through-the-stub-view", "redis-broker"]
)
def test_dramatiqs_tests_pass_on_the_redis_broker(
    files: tuple[str, ...], redis_server: RedisServer, tmp_path: Path
) -> None:
    _run_and_check(files, tmp_path, redis_url=redis_server.url)


@pytest.mark.timeout(RUN_TIMEOUT_SECONDS + 90)  # a run, and a short one again
def test_dramatiqs_tests_pass_on_the_rabbitmq_broker(
    redis_server: RedisServer, contract_vhost: str, tmp_path: Path
) -> None:
    _run_and_check(RABBITMQ_FILES, tmp_path, redis_url=redis_server.url, amqp_url=contract_vhost)
