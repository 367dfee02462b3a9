#!/usr/bin/env bash
# Set up (first run) and run everything: `llm-worker up` (workers, scheduler,
# dashboard) with any extra arguments, e.g. scripts/run.sh --processes 2 --threads 8
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/llm-worker up "$@"
