"""The sweep: expire queued jobs that waited too long for the LLM."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from llm_worker.broker.redis_consumer import move_unreadable
from llm_worker.broker.redis_layout import RedisLayout
from llm_worker.fleet.expiry import is_expired
from llm_worker.jobs.expiry import claim_and_expire
from llm_worker.jobs.kind import job_kind_of
from llm_worker.lua import lua_script

if TYPE_CHECKING:  # the context is handed in; it imports this package
    from llm_worker.services import Services

logger = logging.getLogger("llm_worker.sweeper")

_REMOVE = lua_script(__name__, "sweep_remove.lua")


@dataclass
class SweepReport:
    """What one sweep did."""

    scanned: int = 0
    expired: int = 0
    already_expired: int = 0
    unreadable: int = 0


def sweep_redis_queues(svc: Services, broker: RedisBroker, queues: Iterable[str]) -> SweepReport:
    """Expire every job in ``queues`` (and their delay queues) past its expiry age.

    Reads the broker's message hashes directly (a queue's and its delay queue's,
    see :mod:`~llm_worker.broker.redis_layout`), so jobs no worker ever picked up, delayed
    retries and held-back jobs are all seen.  An expired job's message is
    removed from the broker; one expired earlier by another sweeper or
    worker is removed without telling anyone again.  A message that cannot be
    parsed is moved aside to ``{ns}:{queue}.unreadable``.
    """
    report = SweepReport()
    max_age = svc.settings.llm_unavailable_expiry_seconds
    layout = RedisLayout.of(broker)
    remove = broker.client.register_script(_REMOVE)
    for queue in queues:
        for name in (queue, layout.delay_queue(queue)):
            ids_key, msgs_key = layout.ids_key(name), layout.messages_key(name)
            for redis_id, data in layout.payloads(name):
                report.scanned += 1
                try:
                    message = Message.decode(data)
                except Exception:
                    move_unreadable(broker.client, broker.namespace, name, redis_id)
                    logger.error(
                        "unreadable message %s in %s moved aside to %s",
                        redis_id.decode(errors="replace"),
                        msgs_key,
                        layout.unreadable_key(name),
                    )
                    report.unreadable += 1
                    continue
                kind = job_kind_of(broker, message)
                if kind is None or not is_expired(message, max_age):
                    continue
                if claim_and_expire(svc, message, kind):
                    report.expired += 1
                else:
                    report.already_expired += 1
                remove(keys=[ids_key, msgs_key], args=[redis_id])
    return report
