#!/usr/bin/env bash
# Run every check on a fresh machine: set-up, ruff, mypy and the test suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -k breaker
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test

# RabbitMQ for the broker tests: installed and started when nothing answers on 5672.
rabbit_answers() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if ! rabbit_answers; then
    as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
    if ! command -v rabbitmq-server >/dev/null; then
        echo "test: installing rabbitmq-server"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
    fi
    echo "test: starting rabbitmq-server"
    as_root rabbitmq-server -detached
    for _ in $(seq 120); do rabbit_answers && break; sleep 1; done
    rabbit_answers || { echo "test: rabbitmq-server did not start" >&2; exit 1; }
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest "$@"
