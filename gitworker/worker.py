"""Entry point of the reference git worker: ``dramatiq gitworker.worker``."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker

from llm_worker.settings import broker_settings

from .handlers import declare

_config = broker_settings()
broker: dramatiq.Broker = (
    RabbitmqBroker(url=_config.effective_broker_url)
    if _config.uses_rabbitmq
    else RedisBroker(url=_config.effective_broker_url)
)
dramatiq.set_broker(broker)
actors = declare(broker)
