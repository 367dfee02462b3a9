#!/usr/bin/env bash
# Set up (first run) and start the workers: `dramatiq actors` with any extra
# arguments, e.g. scripts/worker.sh --processes 2 --threads 8
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/dramatiq actors "$@"
