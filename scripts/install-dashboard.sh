#!/usr/bin/env bash
# Install dramatiq-dashboard 0.4.0 without its declared dependencies.
# It declares dramatiq<2 and redis<5, but every API it uses is unchanged in the
# dramatiq 2.2 and redis-py 5 to 8 this project installs; its one other
# dependency, jinja2, is in setup.cfg. Usage: scripts/install-dashboard.sh [PYTHON]
# (default .venv/bin/python; the Dockerfile passes the image's python).
set -euo pipefail
PYTHON="${1:-.venv/bin/python}"
"$PYTHON" -m pip install -q --disable-pip-version-check --no-deps "dramatiq-dashboard==0.4.0"
