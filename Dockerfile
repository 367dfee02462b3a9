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

# Dependencies first, in their own cached layer: only setup.cfg changes rebuild it.
COPY pyproject.toml setup.cfg README.md ./
RUN mkdir actors middleware llm_worker gitworker \
    && touch actors/__init__.py middleware/__init__.py llm_worker/__init__.py gitworker/__init__.py \
    && pip install . \
    && pip uninstall -y llm-worker \
    && rm -rf actors middleware llm_worker gitworker build

COPY actors ./actors
COPY middleware ./middleware
COPY llm_worker ./llm_worker
COPY gitworker ./gitworker
RUN pip install . && rm -rf build

USER worker
ENV DASHBOARD_HOST=0.0.0.0
EXPOSE 8081 9191
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD ["llm-worker", "status"]
CMD ["llm-worker", "up", "--processes", "2", "--threads", "8"]
