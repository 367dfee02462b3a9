"""The helpers Dramatiq's tests import from their package's ``common`` module.

Dramatiq's source distribution ships its test modules without the ``common`` module
they import (``from .common import worker, skip_on_windows, ...``); the runner puts this
file beside them under that name. It gives the same names: an in-process worker as a
context manager, the skip markers, and the RabbitMQ credentials and reachability, here
of the run's own vhost (``LLMW_CONTRACT_AMQP_URL``; without it RabbitMQ counts as
unreachable).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import pika
import pika.exceptions
import pytest
from dramatiq import Worker
from dramatiq.threading import is_gevent_active

#: The run's own RabbitMQ vhost, or empty.
AMQP_URL = os.environ.get("LLMW_CONTRACT_AMQP_URL", "")


@contextmanager
def worker(*args: Any, **kwargs: Any) -> Iterator[Worker]:
    """A started :class:`dramatiq.Worker` (same arguments), stopped on the way out."""
    started = Worker(*args, **kwargs)
    started.start()
    try:
        yield started
    finally:
        started.stop()


#: Dramatiq skips these on its own CI services; this project's CI is neither.
skip_in_ci = pytest.mark.skipif(
    os.getenv("APPVEYOR") is not None or os.getenv("GITHUB_ACTION") is not None,
    reason="test skipped in CI",
)
skip_on_windows = pytest.mark.skipif(
    platform.system() == "Windows", reason="test skipped on Windows"
)
skip_on_pypy = pytest.mark.skipif(
    platform.python_implementation() == "PyPy",
    reason="Time limits are not supported under PyPy.",
)
skip_with_gevent = pytest.mark.skipif(
    is_gevent_active(), reason="Behaviour with gevent is different."
)
skip_without_gevent = pytest.mark.skipif(
    not is_gevent_active(), reason="Behaviour without gevent is different."
)

_amqp = urlsplit(AMQP_URL)
RABBITMQ_USERNAME = unquote(_amqp.username or "guest")
RABBITMQ_PASSWORD = unquote(_amqp.password or "guest")
RABBITMQ_CREDENTIALS = pika.credentials.PlainCredentials(RABBITMQ_USERNAME, RABBITMQ_PASSWORD)


def rabbit_mq_is_unreachable() -> bool:
    """Whether the run has no RabbitMQ vhost, or its node refuses a connection."""
    if not AMQP_URL:
        return True
    try:
        pika.BlockingConnection(pika.URLParameters(AMQP_URL)).close()
    except pika.exceptions.AMQPError:
        return True
    return False


skip_unless_rabbit_mq = pytest.mark.skipif(
    rabbit_mq_is_unreachable(), reason="RabbitMQ is unreachable"
)
