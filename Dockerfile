# The LLM job worker. `docker run IMAGE` runs `llm-worker up` (workers, scheduler,
# dashboard); docker-compose.yml runs each part as its own service instead.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 worker
WORKDIR /app

# Dependencies first, in their own cached layer: only setup.cfg (or the dashboard's
# install script) changes rebuild it. setup.cfg reads README.md as the package's long
# description: an empty stand-in here keeps README edits out of this layer.
COPY pyproject.toml setup.cfg ./
COPY scripts/install-dashboard.sh ./scripts/
RUN mkdir console actors middleware llm_worker gitworker \
    && touch README.md console/__init__.py actors/__init__.py middleware/__init__.py \
        llm_worker/__init__.py gitworker/__init__.py \
    && pip install ".[otel]" \
    && scripts/install-dashboard.sh python \
    && pip uninstall -y llm-worker \
    && rm -rf console actors middleware llm_worker gitworker build README.md

COPY README.md ./
COPY console ./console
COPY actors ./actors
COPY middleware ./middleware
COPY llm_worker ./llm_worker
COPY gitworker ./gitworker
RUN pip install --no-deps . && rm -rf build

USER worker
# In a container the published ports decide who reaches the dashboard and metrics.
ENV DASHBOARD_HOST=0.0.0.0 \
    dramatiq_prom_host=0.0.0.0
EXPOSE 8081 9191
# Liveness only: `llm-worker health` passes while the worker processes run, whatever
# the LLM's state (`llm-worker status` exits 1 during an LLM outage: use it for
# readiness and alerts, not to restart workers).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["llm-worker", "health"]
CMD ["llm-worker", "up", "--processes", "2", "--threads", "8"]
