#!/usr/bin/env bash
# Run every check on a fresh machine: set-up, ruff, mypy and the test suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -k breaker
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest "$@"
