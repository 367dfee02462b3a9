"""The broker every actor is declared on, with this service's middleware.

Importing this module reads only ``BROKER_URL``/``REDIS_URL`` and
``SWEEP_CRON`` and connects to nothing, so producers can import
:mod:`actors` cheaply.
"""

from __future__ import annotations

import dramatiq
from dramatiq.encoder import JSONEncoder
from dramatiq.middleware import (
    Callbacks,
    CurrentMessage,
    Middleware,
    Pipelines,
    ShutdownNotifications,
    TimeLimit,
)
from periodiq import PeriodiqMiddleware

from llm_worker.broker.redis_broker import RecoveringRedisBroker
from llm_worker.errors import SettingsError
from llm_worker.llm.green import prepare_for_gevent
from llm_worker.settings import BrokerSettings, broker_settings
from middleware import (
    CircuitBreaker,
    DeadWorkerRecovery,
    ExpiryCheck,
    FinishedJobCheck,
    InvalidResponseBackoff,
    JobArgumentsCheck,
    JobOutcomeLog,
    JobRetries,
    LivenessBeat,
    LLMCapacity,
    MessageAgeCheck,
    ReportOutboxDrain,
    Tracing,
    WorkerSetup,
)


def service_middleware(config: BrokerSettings) -> list[Middleware]:
    """The middleware stack, in order.

    Dramatiq's defaults minus ``AgeLimit`` and ``Retries``, which this
    service replaces with its own; ``Prometheus`` (no longer one of Dramatiq's
    defaults since 2.0, extra ``dramatiq[prometheus]``) only with ``METRICS_ENABLED``.
    """
    metrics: list[Middleware] = []
    if config.metrics_enabled:
        from dramatiq.middleware.prometheus import Prometheus

        metrics.append(Prometheus())
    return [
        WorkerSetup(),
        Tracing(),
        JobOutcomeLog(),
        *metrics,
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        CurrentMessage(),
        PeriodiqMiddleware(skip_delay=60),
        JobArgumentsCheck(),
        FinishedJobCheck(),
        ExpiryCheck(),
        MessageAgeCheck(),
        CircuitBreaker(),
        InvalidResponseBackoff(),
        JobRetries(),
        LLMCapacity(),
        ReportOutboxDrain(),
        DeadWorkerRecovery(interval=config.broker_recovery_interval_seconds),
        LivenessBeat(),
    ]


def build_broker(config: BrokerSettings) -> dramatiq.Broker:
    """A Redis or RabbitMQ broker for ``config``; nothing connects yet."""
    middleware = service_middleware(config)
    if config.uses_rabbitmq:
        from llm_worker.broker.rabbitmq_broker import RecoveringRabbitmqBroker  # imports pika

        return RecoveringRabbitmqBroker(url=config.effective_broker_url, middleware=middleware)
    return RecoveringRedisBroker.from_settings(config, middleware=middleware)


def _configured_broker() -> dramatiq.Broker:
    try:
        config = broker_settings()
    except SettingsError as exc:
        raise SystemExit(f"llm-worker: invalid setting {exc}") from None
    return build_broker(config)


prepare_for_gevent()
dramatiq.set_encoder(JSONEncoder())
broker = _configured_broker()
dramatiq.set_broker(broker)
