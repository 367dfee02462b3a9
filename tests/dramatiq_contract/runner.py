"""Run Dramatiq's own tests against the project's brokers in a pytest subprocess, and
compare their outcomes with :mod:`tests.dramatiq_contract.differences`.

The tests come from the source distribution of the installed Dramatiq, unpacked by
``scripts/fetch-dramatiq-tests.sh`` (``scripts/setup.sh test`` runs it) into
``upstream-tests/dramatiq-<version>/tests/``. A run copies the chosen modules into a
package of its own (:data:`PACKAGE`, in a temporary folder) beside
``tests/dramatiq_contract/common.py`` as their ``common`` module, and runs pytest there
with :mod:`tests.dramatiq_contract.plugin` for fixtures and an empty configuration
(not the project's: its warnings-as-errors and its time-outs are not Dramatiq's).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from importlib.metadata import version
from pathlib import Path
from typing import NamedTuple

#: The checkout.
ROOT = Path(__file__).resolve().parents[2]
#: Where ``scripts/fetch-dramatiq-tests.sh`` unpacks Dramatiq's tests (git ignores it).
UPSTREAM = ROOT / "upstream-tests"
#: The package Dramatiq's test modules are copied into for a run.
PACKAGE = "dramatiq_tests"
#: Seconds one Dramatiq test may take before pytest-timeout fails it.
TEST_TIMEOUT_SECONDS = 60


def dramatiq_test_id(nodeid: str) -> str:
    """A Dramatiq test's id as :mod:`~tests.dramatiq_contract.differences` names it
    (``test_actors.py::test_name``), from its node id in a run."""
    return nodeid.removeprefix(f"{PACKAGE}/")


def upstream_tests(dramatiq_version: str | None = None) -> Path:
    """The folder of Dramatiq's test modules for ``dramatiq_version`` (the installed one)."""
    return UPSTREAM / f"dramatiq-{dramatiq_version or version('dramatiq')}" / "tests"


class Outcome(NamedTuple):
    """One test's outcome: ``passed``, ``failed``, ``error`` or ``skipped``, its report
    (the failure or the reason for the skip) and its seconds."""

    outcome: str
    details: str
    seconds: float


class Report(NamedTuple):
    """What a run of Dramatiq's tests gave."""

    #: Each test run, by id.
    tests: dict[str, Outcome]
    #: The ids of the tests deselected (they are in ``NOT_RUN``).
    deselected: list[str]
    #: Modules that could not be collected, with the error.
    collect_errors: list[str]
    #: pytest's exit code.
    returncode: int
    #: The run's wall-clock seconds.
    seconds: float
    #: pytest's output (its summary, and the failures in full).
    output: str


def run(
    files: Iterable[str],
    *,
    workdir: Path,
    redis_url: str,
    amqp_url: str = "",
    timeout: float = 300,
    brokers: str | None = None,
    only: Iterable[str] = (),
) -> Report:
    """Run Dramatiq's test modules ``files`` against the project's brokers: the Redis ones
    on the redis-server at ``redis_url`` (flushed whole: it must be the run's own), the
    RabbitMQ one on the vhost of ``amqp_url``; in ``workdir``, within ``timeout`` seconds.
    ``brokers="dramatiq"`` runs them against Dramatiq's own brokers instead; without
    ``brokers``, ``LLMW_CONTRACT_BROKERS`` says which (``project`` when unset).
    ``only``: run just these tests (ids as in the report) of ``files``.

    Raises:
      FileNotFoundError: when Dramatiq's tests are not unpacked (``scripts/setup.sh test``).
      subprocess.TimeoutExpired: when the run takes longer than ``timeout``.
    """
    source = upstream_tests()
    if not source.is_dir():
        raise FileNotFoundError(
            f"{source} is missing: scripts/fetch-dramatiq-tests.sh unpacks Dramatiq's tests "
            "(scripts/setup.sh test runs it)"
        )
    files = list(files)
    package = workdir / PACKAGE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    shutil.copyfile(Path(__file__).with_name("common.py"), package / "common.py")
    for name in files:
        shutil.copyfile(source / name, package / name)
    (workdir / "pytest.ini").write_text("[pytest]\n")
    report_path = workdir / "report.json"
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")])),
        LLMW_CONTRACT_REDIS_URL=redis_url,
        LLMW_CONTRACT_AMQP_URL=amqp_url,
        LLMW_CONTRACT_REPORT=str(report_path),
        LLMW_CONTRACT_BROKERS=brokers or env.get("LLMW_CONTRACT_BROKERS", "project"),
    )
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(workdir / "pytest.ini"),
        "--rootdir",
        str(workdir),
        "-p",
        "tests.dramatiq_contract.plugin",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        "--timeout",
        str(TEST_TIMEOUT_SECONDS),
        "-q",
        "-rfE",
        *(f"{PACKAGE}/{name}" for name in (list(only) or files)),
    ]
    started = time.monotonic()
    done = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout
    )
    seconds = time.monotonic() - started
    output = done.stdout + done.stderr
    if not report_path.exists():
        return Report(
            {}, [], [f"no report (exit {done.returncode})"], done.returncode, seconds, output
        )
    data = json.loads(report_path.read_text())
    tests = {name: Outcome(**entry) for name, entry in data["tests"].items()}
    return Report(
        tests, data["deselected"], data["collect_errors"], done.returncode, seconds, output
    )


def unsorted_modules() -> list[str]:
    """Dramatiq's test modules that :mod:`~tests.dramatiq_contract.differences` neither
    runs nor sets aside (a module a new Dramatiq version added), and those it names that
    Dramatiq does not have."""
    from tests.dramatiq_contract import differences as chosen

    listed = {
        *chosen.STUB_VIEW_FILES,
        *chosen.REDIS_FILES,
        *chosen.RABBITMQ_FILES,
        *chosen.OTHER_FILES,
    }
    present = {path.name for path in upstream_tests().glob("test_*.py")}
    return sorted(present ^ listed)


def unexpected_failures(report: Report) -> list[str]:
    """The tests of ``report`` that did not pass and are not listed as differences."""
    from tests.dramatiq_contract.differences import DIFFERENCES

    return sorted(
        name
        for name, outcome in report.tests.items()
        if outcome.outcome != "passed" and name not in DIFFERENCES
    )


def mismatches(report: Report, files: Iterable[str]) -> list[str]:
    """How ``report`` departs from :mod:`~tests.dramatiq_contract.differences` for the
    modules ``files``: a test listed as a difference that did not fail for its reason,
    any other test that did not pass, a listed test that no longer exists; empty when
    the run went as listed."""
    from tests.dramatiq_contract.differences import DIFFERENCES, NOT_RUN

    modules = {f"{name}::" for name in files}
    problems = [f"collection error: {error}" for error in report.collect_errors]
    for name, outcome in sorted(report.tests.items()):
        difference = DIFFERENCES.get(name)
        if difference is None:
            if outcome.outcome != "passed":
                problems.append(f"{name}: {outcome.outcome}\n{outcome.details}")
        elif outcome.outcome != "failed":
            problems.append(f"{name}: listed as a difference but {outcome.outcome}")
        elif difference.failure not in outcome.details:
            problems.append(f"{name}: failed without {difference.failure!r}\n{outcome.details}")
    for name in sorted(set(DIFFERENCES) | set(NOT_RUN)):
        if any(name.startswith(module) for module in modules) and (
            name not in report.tests and name not in report.deselected
        ):
            problems.append(f"{name}: listed but not among Dramatiq's tests")
    return problems
