#!/usr/bin/env bash
# Run every check on a fresh machine: set-up, ruff, mypy, the manual's build and the test suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -k breaker
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test

. scripts/lib.sh

# git for the review tests, Chromium for the dashboard test.
command -v git >/dev/null || apt_install git
command -v chromium >/dev/null || apt_install chromium

# RabbitMQ for the broker tests: installed and started when nothing answers on 5672.
if ! port_open 5672; then
    command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
    echo "test: starting rabbitmq-server"
    as_root rabbitmq-server -detached
    for _ in $(seq 120); do port_open 5672 && break; sleep 1; done
    port_open 5672 || { echo "test: rabbitmq-server did not start" >&2; exit 1; }
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet --site-dir site
.venv/bin/pytest -n 3 --maxschedchunk 1 "$@"
