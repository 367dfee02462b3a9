"""``llm-worker status``: breaker, queues, held-back jobs and workers at a glance."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from llm_worker.broker.redis_layout import RedisLayout
from llm_worker.core.refusals import unauthorized_alarm
from llm_worker.fleet.breaker import BreakerStatus, BreakerStore
from llm_worker.jobs import retry as message_options
from llm_worker.services import Services
from llm_worker.text import plural

#: Exit codes: 1 while no LLM serves jobs (the primary down, its breaker open or its server
#: not answering, and no fallback whose breaker is closed) or Core refuses the worker's
#: credentials.
EXIT_HEALTHY, EXIT_NOT_READY, EXIT_BROKER_DOWN = 0, 1, 2


@dataclass
class QueueStatus:
    """Counts of one queue; ages in seconds (``None`` when unknown or empty)."""

    name: str
    ready: int = 0
    delayed: int = 0
    in_flight: int = 0
    dead: int = 0
    oldest_age_seconds: float | None = None
    held_back: int = 0
    #: Messages that could not be parsed, moved aside to ``{ns}:{queue}.unreadable``.
    unreadable: int = 0
    #: Delayed messages re-enqueued to wait for LLM capacity.
    waiting_for_capacity: int = 0
    held_for_core: int = 0


@dataclass
class Status:
    """Everything ``llm-worker status`` reports."""

    broker: str
    breaker: dict[str, Any]
    queues: list[QueueStatus] = field(default_factory=list)
    held_back: int = 0
    first_expiry_in_seconds: float | None = None
    live_workers: int | None = None
    #: Reports of failed, skipped and expired jobs waiting for Core (``pending``) and
    #: given up on (``dead``).
    reports: dict[str, int] = field(default_factory=dict)
    #: The LLM server's reachability (:class:`~.llm_reachability.Reachability` as a dict).
    llm: dict[str, Any] | None = None
    #: While Core refuses the worker's credentials: ``since``, ``last_error``, ``at``.
    core_unauthorized: dict[str, Any] | None = None
    #: Jobs held because Core refused the worker's credentials.
    held_for_core: int = 0
    #: Fleet-wide LLM capacity: slots, the last minute's requests and tokens against
    #: the limits, jobs waiting (on threads and delayed in queues), the cooldown.
    capacity: dict[str, Any] = field(default_factory=dict)
    #: Which LLM takes jobs now: ``primary``, ``fallback`` or ``none`` (held back).
    serving: str = "primary"
    #: The fallback LLM's breaker, when a fallback is configured.
    fallback_breaker: dict[str, Any] | None = None

    @property
    def llm_down(self) -> bool:
        """Whether the breaker is open or the LLM server does not answer."""
        unreachable = self.llm is not None and not self.llm["reachable"]
        return self.breaker["state"] == "open" or unreachable

    @property
    def fallback_serves(self) -> bool:
        """Whether jobs go to the fallback LLM: the primary is down, and a fallback is
        configured whose breaker is closed."""
        fallback = self.fallback_breaker
        return self.llm_down and fallback is not None and fallback["state"] != "open"

    @property
    def jobs_served(self) -> bool:
        """Whether an LLM serves jobs now: the primary, or else the fallback."""
        return not self.llm_down or self.fallback_serves

    @property
    def exit_code(self) -> int:
        """0 healthy (jobs are served, by the primary or the fallback LLM), 1 no LLM serves
        jobs or Core refuses the worker's credentials."""
        if not self.jobs_served or self.core_unauthorized is not None:
            return EXIT_NOT_READY
        return EXIT_HEALTHY

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def redis_queue_status(
    broker: RedisBroker, queue: str, now: float
) -> tuple[QueueStatus, list[float]]:
    """One queue's counts from Redis, and the enqueue times of its held-back jobs."""
    layout = RedisLayout.of(broker)
    status = QueueStatus(queue)
    status.ready = layout.ready_count(queue)
    status.dead = layout.dead_letter_count(queue)
    status.unreadable = layout.unreadable_count(queue)
    status.in_flight = layout.in_flight_count(queue)
    pending = list(layout.queued_messages(queue))
    delayed = list(layout.delayed_messages(queue))
    status.delayed = len(delayed)
    every = pending + delayed
    if every:
        status.oldest_age_seconds = round(now - min(m.message_timestamp for m in every) / 1000, 1)
    held = [m.message_timestamp / 1000 for m in every if m.options.get(message_options.HELD_SINCE)]
    status.held_back = len(held)
    status.held_for_core = sum(1 for m in every if m.options.get(message_options.CORE_HELD_SINCE))
    status.waiting_for_capacity = sum(
        1 for m in delayed if m.options.get(message_options.CAPACITY_WAITS)
    )
    return status, held


def serving(primary: BreakerStatus, fallback: BreakerStatus | None) -> str:
    """Which LLM takes jobs: ``primary``, ``fallback`` or ``none`` (jobs held back)."""
    if not primary.is_open:
        return "primary"
    return "fallback" if fallback is not None and not fallback.is_open else "none"


def collect_status(broker: dramatiq.Broker, svc: Services, breaker: BreakerStatus) -> Status:
    """Read the status of every declared queue (Redis: exact; RabbitMQ: counts only)
    and the LLM's reachability (cached)."""
    from .llm_reachability import llm_reachability

    now = time.time()
    queues = sorted(broker.get_declared_queues())
    status = Status(
        type(broker).__name__,
        breaker.as_dict(),
        reports=svc.outbox.counts(),
        llm=llm_reachability(svc).as_dict(),
        core_unauthorized=unauthorized_alarm(svc.redis, svc.settings.key_prefix),
    )
    fallback = None
    if svc.settings.llm_fallback_base_url:
        fallback = BreakerStore(
            svc.redis, svc.settings.key_prefix, outage_retention=0, fallback=True
        )
        status.fallback_breaker = fallback.status().as_dict()
    status.serving = serving(breaker, fallback.status() if fallback else None)
    status.capacity = asdict(svc.capacity.store.snapshot(now=now))
    if isinstance(broker, RedisBroker):
        held: list[float] = []
        for queue in queues:
            queue_status, queue_held = redis_queue_status(broker, queue, now)
            status.queues.append(queue_status)
            status.held_for_core += queue_status.held_for_core
            held.extend(queue_held)
        status.capacity["waiting_in_queues"] = sum(q.waiting_for_capacity for q in status.queues)
        status.held_back = len(held)
        if held:
            expiry = svc.settings.llm_unavailable_expiry_seconds
            status.first_expiry_in_seconds = round(min(held) + expiry - now, 1)
        # Alive: a heartbeat younger than the broker's timeout (BROKER_HEARTBEAT_TIMEOUT_SECONDS).
        cutoff = int(now * 1000) - int(broker.heartbeat_timeout)
        status.live_workers = RedisLayout.of(broker).live_workers(cutoff)
    else:
        for queue in queues:
            ready, delayed, dead = broker.get_queue_message_counts(queue)  # type: ignore[attr-defined]
            status.queues.append(QueueStatus(queue, ready=ready, delayed=delayed, dead=dead))
    return status


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def _llm_line(llm: dict[str, Any], breaker_open: bool, fallback_serves: bool) -> str:
    checked = _age(max(0.0, time.time() - llm["checked_at"]))
    if llm["reachable"]:
        return f"LLM: {llm['url']} answers ({llm['detail']}, checked {checked} ago)"
    if fallback_serves:
        held = "jobs go to the fallback LLM until it answers"
    elif breaker_open:
        held = "jobs are held until it answers"
    else:
        held = "the first job to call it will open the breaker, and jobs wait until it answers"
    return f"LLM: {llm['url']} NOT REACHABLE ({llm['detail']}, checked {checked} ago); {held}"


def _llm_lines(status: Status) -> list[str]:
    """The breakers, the LLM's reachability and which LLM serves jobs."""
    breaker = status.breaker
    if breaker["state"] == "open":
        since = time.time() - breaker["since"]
        next_probe = breaker["next_probe_at"] - time.time()
        lines = [
            f"breaker: OPEN for {_age(since)}, next probe in {_age(max(0.0, next_probe))}",
            f"  last error: {breaker['last_error']}",
        ]
    else:
        lines = ["breaker: closed"]
    if status.llm is not None:
        lines.append(_llm_line(status.llm, breaker["state"] == "open", status.fallback_serves))
    if status.fallback_breaker is not None:
        fallback = status.fallback_breaker
        if fallback["state"] == "open":
            lines.append(f"fallback LLM breaker: OPEN, last error: {fallback['last_error']}")
        else:
            lines.append("fallback LLM breaker: closed")
    lines.append(f"serving: {status.serving}")
    if status.fallback_serves:
        lines.append("primary LLM down: jobs are served by the fallback LLM")
    return lines


def render(status: Status) -> str:
    """The status as text for a terminal."""
    lines = _llm_lines(status)
    lines += render_capacity(status.capacity)
    lines.append(f"broker: {status.broker}")
    header = (
        f"{'queue':<20} {'ready':>7} {'delayed':>8} {'in flight':>9} {'dead':>6} "
        f"{'unreadable':>10} {'oldest':>7}"
    )
    lines += ["", header]
    for q in status.queues:
        lines.append(
            f"{q.name:<20} {q.ready:>7} {q.delayed:>8} {q.in_flight:>9} {q.dead:>6} "
            f"{q.unreadable:>10} {_age(q.oldest_age_seconds):>7}"
        )
    lines.append("")
    if status.held_back:
        lines.append(
            f"held back by the outage: {plural(status.held_back, 'job')}, "
            f"first expires in {_age(status.first_expiry_in_seconds)}"
        )
    else:
        lines.append("held back by the outage: none")
    alarm = status.core_unauthorized
    if alarm is not None:
        lines += [
            f"CORE REFUSES THE WORKER'S CREDENTIALS for {_age(time.time() - alarm['since'])}: "
            f"{plural(status.held_for_core, 'job')} held (check CORE_API_TOKEN)",
            f"  last error: {alarm['last_error']}",
        ]
    if status.reports:
        lines.append(
            f"job reports waiting for Core: {status.reports['pending']}, "
            f"dead: {status.reports['dead']}"
        )
    if status.live_workers is not None:
        lines.append(
            f"live worker processes: {status.live_workers} "
            "(producers that sent within the heartbeat timeout count too)"
        )
    return "\n".join(lines)


def _limit(value: int) -> str:
    return str(value) if value else "no limit"


def render_capacity(capacity: dict[str, Any]) -> list[str]:
    """The capacity lines of the text status."""
    if not capacity:
        return []
    cap = capacity["max_concurrent"]
    rpm, tpm = capacity["requests_per_minute_limit"], capacity["tokens_per_minute_limit"]
    if cap or rpm or tpm:
        lines = [
            f"LLM slots in use: {capacity['slots_in_use']} of {cap if cap else 'no cap'}",
            f"LLM requests last minute: {capacity['requests_last_minute']} "
            f"(limit {_limit(rpm)}/min), tokens: {capacity['tokens_last_minute']} "
            f"(limit {_limit(tpm)}/min)",
            f"waiting for LLM capacity: {capacity['waiting_on_threads']} on threads, "
            f"{capacity.get('waiting_in_queues', 0)} delayed in queues",
        ]
    else:
        lines = ["LLM capacity: no cap and no per-minute limits set"]
    cooldown = capacity.get("cooldown")
    if cooldown:
        left = max(0.0, cooldown["until"] - time.time())
        lines.append(f"cooldown after a 429: {left:.1f}s left ({cooldown['reason']})")
    else:
        lines.append("cooldown after a 429: none")
    return lines


def to_json(status: Status) -> str:
    """The status as one JSON document."""
    return json.dumps(status.as_dict(), indent=2)
