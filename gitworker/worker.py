"""Entry point of the reference git worker: ``dramatiq gitworker.worker``."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from llm_worker.broker.redis_broker import RecoveringRedisBroker
from llm_worker.settings import broker_settings
from middleware.dead_worker_recovery import DeadWorkerRecovery
from middleware.log_setup import LogSetup
from middleware.tracing import Tracing

from .handlers import declare

_config = broker_settings()
broker: dramatiq.Broker = (
    RabbitmqBroker(url=_config.effective_broker_url)
    if _config.uses_rabbitmq
    else RecoveringRedisBroker.from_settings(_config)
)
# A killed git worker's messages come back as the LLM workers' do.
broker.add_middleware(DeadWorkerRecovery(interval=_config.broker_recovery_interval_seconds))
# Messages' arguments (diffs, tool arguments, comments) stay out of the logs.
broker.add_middleware(LogSetup())
# A review's turns through the git worker stay in the trace of the chunk's review.
broker.add_middleware(Tracing(service_name="llm-git-worker"))
dramatiq.set_broker(broker)
actors = declare(broker)
