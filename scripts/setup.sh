#!/usr/bin/env bash
# Set up this checkout on a fresh Debian machine: Redis (installed and started
# when nothing answers on REDIS_PORT) and a virtualenv in .venv with the project.
# Usage: scripts/setup.sh [test]   ("test" also installs the test tools, gevent and the local model)
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
    echo "setup: starting redis-server on 127.0.0.1:$REDIS_PORT"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no
    for _ in $(seq 50); do redis_answers && break; sleep 0.1; done
    redis_answers || { echo "setup: redis-server did not start" >&2; exit 1; }
fi

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
extras=""
# The tests also run the bundled real model; llama.cpp is compiled without
# CPU-specific instructions (a native build can die with "Illegal instruction").
[ "${1:-}" = "test" ] && extras="[test,gevent,local-llm]"
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
