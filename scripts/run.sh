#!/usr/bin/env bash
# Set up (first run) and run everything: `llm-worker up` (workers, scheduler,
# dashboard) with any extra arguments, e.g. scripts/run.sh --processes 2 --threads 8
# With no LLM_BASE_URL (nor another provider's key or host) it also serves the
# bundled local model, and with no CORE_API_URL the dev Core, so a fresh clone
# answers real jobs end to end.
set -euo pipefail
cd "$(dirname "$0")/.."

embedded=()
if [ -z "${LLM_BASE_URL:-}${OPENAI_API_KEY:-}${ANTHROPIC_API_KEY:-}${OLLAMA_HOST:-}" ]; then
    embedded+=(--local-llm)
fi
[ -z "${CORE_API_URL:-}" ] && embedded+=(--dev-core)

if [[ " ${embedded[*]} " == *" --local-llm "* ]]; then
    scripts/setup.sh local
    echo "run: no LLM_BASE_URL: serving the bundled local model (log in local-llm.log)"
else
    scripts/setup.sh
fi
[ -z "${CORE_API_URL:-}" ] && echo "run: no CORE_API_URL: serving the dev Core on http://127.0.0.1:8000"
exec .venv/bin/llm-worker up "${embedded[@]}" "$@"
