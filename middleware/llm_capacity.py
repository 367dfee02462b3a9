"""Jobs that found no LLM capacity wait in the broker, and actors run by priority."""

from __future__ import annotations

import logging
import random
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy

from llm_worker.errors import LLMAtCapacity, LLMRateLimited
from llm_worker.fleet.quota import tell_over_budget
from llm_worker.identity import JobRef
from llm_worker.jobs import retry as message_options
from llm_worker.jobs.kind import actor_job_kind
from llm_worker.jobs.outcome import note_outcome
from llm_worker.jobs.retry import (
    MAX_SHARE_WAIT_SECONDS,
    MIN_CAPACITY_WAIT_SECONDS,
    QUOTA_SPREAD_SECONDS,
    SHARE_WAIT_SECONDS,
    backoff,
    send_again,
)
from llm_worker.observability import metrics
from llm_worker.services import services

from .base import JobMiddleware
from .periodic import PeriodicPass

logger = logging.getLogger(__name__)


def wait_delay(seconds: float) -> float:
    """The re-enqueue delay for a capacity wait of ``seconds``: at least
    :data:`~llm_worker.jobs.retry.MIN_CAPACITY_WAIT_SECONDS`, spread by up to a quarter so
    waiters do not all come back in the same instant."""
    return backoff(0, base=seconds, minimum=MIN_CAPACITY_WAIT_SECONDS, spread=0.25)


def capacity_delay(exception: LLMAtCapacity, waits: int) -> float:
    """The re-enqueue delay of a job that found no capacity, its ``waits``-th wait.

    A job sent back because its user has jobs waiting already waits a random time up to
    :data:`~llm_worker.jobs.retry.SHARE_WAIT_SECONDS` doubled at each such wait, at most
    :data:`~llm_worker.jobs.retry.MAX_SHARE_WAIT_SECONDS` (full jitter: a backlog sent at
    once comes back spread out, not in waves that leave the user's share idle between
    them), so a large backlog of one user circulates slowly while its waiting jobs keep
    its share busy; one over its daily budget waits for the day to turn; the others wait
    what the gate said.
    """
    if exception.reason == "quota":
        return exception.wait_seconds + random.uniform(0, QUOTA_SPREAD_SECONDS)
    if exception.sent_back:
        ceiling = min(MAX_SHARE_WAIT_SECONDS, backoff(waits - 1, base=SHARE_WAIT_SECONDS))
        return random.uniform(MIN_CAPACITY_WAIT_SECONDS, ceiling)
    return wait_delay(exception.wait_seconds)


class LLMCapacity(JobMiddleware, PeriodicPass):
    """Fleet-wide LLM capacity: re-enqueue jobs that must wait, set actor priorities.

    - A job whose call found no capacity on its thread within
      ``LLM_CAPACITY_WAIT_SECONDS`` (:class:`~llm_worker.errors.LLMAtCapacity`),
      or whose call got a 429 (:class:`~llm_worker.errors.LLMRateLimited`, which
      started the fleet's cooldown), goes back to the broker with a short delay
      (when the slot, bucket or cooldown says).  This is never a retry: no
      retry counter moves, the job is never skipped as stale afterwards, and
      the circuit breaker stays closed.
    - At worker boot every LLM actor's Dramatiq priority is set from
      ``LLM_PRIORITY_<ACTOR>``, so a process runs interactive jobs it has
      fetched before batch ones; the capacity gate gives free slots to the
      best priority waiting anywhere in the fleet.
    - With metrics on, a thread of each process publishes the fleet's capacity
      (slots in use, the last minute's requests and tokens, waiters, cooldown)
      every ``interval`` seconds.

    Parameters:
      interval: seconds between two metric updates.
    """

    thread_name = "llm-capacity-metrics"

    def __init__(self, *, interval: float = 2.0) -> None:
        super().__init__(interval=interval)

    def runs_on(self, broker: dramatiq.Broker) -> bool:
        return metrics.enabled()

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        config = services().settings
        for actor in broker.actors.values():
            kind = actor_job_kind(actor)
            if kind is not None:
                actor.priority = config.llm_priority(actor.actor_name, kind.priority)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if not isinstance(exception, LLMAtCapacity | LLMRateLimited):
            return
        if self.kind_of(broker, message) is None:
            return
        waits = int(message.options.get(message_options.CAPACITY_WAITS) or 0) + 1
        message.options[message_options.CAPACITY_WAITS] = waits
        if isinstance(exception, LLMAtCapacity):
            reason = exception.reason
            delay = capacity_delay(exception, waits)
            if reason == "quota":
                svc = services()
                tell_over_budget(
                    svc.notifier,
                    svc.settings.key_prefix,
                    JobRef.from_message(message),
                    daily_tokens=svc.settings.llm_user_daily_tokens,
                    resets_in=exception.wait_seconds,
                )
        else:
            reason = "cooldown"
            delay = wait_delay(services().capacity.store.cooldown_seconds())
        note_outcome("waiting", f"no LLM capacity ({reason})")
        metrics.count_capacity_wait(message.actor_name, reason)
        send_again(broker, message, delay, reason="capacity")
        logger.info(
            "%s waits %.2fs for LLM capacity (%s), wait %d",
            message.message_id,
            delay,
            reason,
            waits,
        )

    def run_pass(self, broker: dramatiq.Broker) -> None:
        """Publish the fleet's capacity to the metrics."""
        metrics.set_capacity(services().capacity.store.snapshot())
