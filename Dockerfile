# The LLM job worker: `docker run IMAGE` runs `dramatiq actors`;
# `docker run IMAGE periodiq actors` runs the scheduler.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 worker
WORKDIR /app

# Dependencies first, in their own cached layer: only setup.cfg changes rebuild it.
COPY pyproject.toml setup.cfg README.md ./
RUN mkdir actors middleware llm_worker \
    && touch actors/__init__.py middleware/__init__.py llm_worker/__init__.py \
    && pip install . \
    && pip uninstall -y llm-worker \
    && rm -rf actors middleware llm_worker build

COPY actors ./actors
COPY middleware ./middleware
COPY llm_worker ./llm_worker
RUN pip install . && rm -rf build

USER worker
CMD ["dramatiq", "actors", "--processes", "2", "--threads", "8"]
