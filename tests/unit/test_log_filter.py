"""Dramatiq's repeated lines while Redis is away are cut down, never dropped silently."""

from __future__ import annotations

import logging
import sys

import pytest
import redis

from llm_worker.observability.logs import UNHANDLED_EXCEPTION_LOG, DropRoutineDramatiqLines

pytestmark = pytest.mark.unit


def _failed_job_record(error: BaseException) -> logging.LogRecord:
    try:
        raise error
    except BaseException:
        exc_info = sys.exc_info()
    return logging.LogRecord(
        "dramatiq.worker.WorkerThread",
        logging.ERROR,
        __file__,
        1,
        UNHANDLED_EXCEPTION_LOG,
        ("intent_classify[m1]",),
        exc_info,
    )


def test_a_jobs_redis_connection_error_keeps_its_traceback_once_per_interval():
    lines = DropRoutineDramatiqLines()
    first = _failed_job_record(redis.ConnectionError("Error 111 connecting"))
    second = _failed_job_record(redis.ConnectionError("Error 111 connecting"))

    assert lines.filter(first) and lines.filter(second)

    assert first.exc_info is not None
    assert second.exc_info is None
    assert second.getMessage() == (
        "Failed to process message intent_classify[m1] with unhandled exception: "
        "ConnectionError: Error 111 connecting."
    )


def test_any_other_error_keeps_its_traceback_every_time():
    lines = DropRoutineDramatiqLines()
    records = [_failed_job_record(ValueError("bug")) for _ in range(3)]
    assert all(lines.filter(record) for record in records)
    assert all(record.exc_info is not None for record in records)
