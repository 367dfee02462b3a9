"""Where one job is, from what the broker and Redis know.

``llm-worker send --wait`` says it when no notification came in time: finished
(its report waiting for Core, or dead), dead-lettered, delayed (retrying after an
error or an invalid answer, or held back by the breaker, with the attempt and
when it runs next), running, or queued.
"""

from __future__ import annotations

import json
import time
from typing import Any

import dramatiq
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import dq_name, xq_name

from .. import keys, message_options
from ..breaker import BreakerStatus
from ..services import Services


def _seconds(value: float) -> str:
    return f"{max(0.0, value):.1f}s"


def breaker_line(breaker: BreakerStatus, now: float) -> str:
    """The breaker's state in a few words."""
    if not breaker.is_open:
        return "the breaker is closed"
    next_probe = (breaker.next_probe_at or now) - now
    return (
        f"the breaker is open (LLM unavailable: {breaker.last_error}), "
        f"next probe in {_seconds(next_probe)}"
    )


def _finished(svc: Services, message_id: str, now: float) -> str | None:
    prefix = svc.settings.key_prefix
    raw = svc.redis.hget(keys.outbox(prefix), message_id)
    if raw is not None:
        report = json.loads(raw)
        due = svc.redis.zscore(keys.outbox_due(prefix), message_id)
        when = f", next try in {_seconds(due - now)}" if due is not None else ""
        return (
            f"{report['status']} ({report['error']}); its report waits for Core "
            f"(delivery attempts so far: {report.get('attempts', 0)}{when})"
        )
    raw = svc.redis.hget(keys.outbox_dead(prefix), message_id)
    if raw is not None:
        report = json.loads(raw)
        return (
            f"{report['status']} ({report['error']}); Core refused its report for good "
            "(a dead report: llm-worker requeue-dead retries it)"
        )
    state = svc.redis.get(keys.finished(prefix, message_id))
    if state is not None:
        return f"{state.decode()}; Core accepted it"
    return None


def attempt_line(svc: Services, options: dict[str, Any]) -> str:
    """``attempt n of m`` for a job about to run again, and why it runs again."""
    config = svc.settings
    retries = int(options.get(message_options.RETRIES) or 0)
    invalid = int(options.get(message_options.INVALID_RETRIES) or 0)
    attempt = 1 + retries + invalid
    server_errors = int(options.get(message_options.SERVER_ERRORS) or 0)
    if server_errors and not retries and not invalid:
        return (
            "retrying after the LLM failed its request while answering probes "
            f"({server_errors} of {config.llm_request_max_server_errors} server errors)"
        )
    if invalid and not retries:
        return (
            f"retrying after an invalid answer, attempt {attempt} of {config.llm_max_retries + 1}"
        )
    if retries:
        error = str(options.get("traceback") or "").strip().splitlines()[-1:] or ["an error"]
        return f"retrying after {error[0][:300]}, attempt {attempt} of {config.job_max_retries + 1}"
    return f"attempt {attempt}"


def _delayed(svc: Services, message: Message[Any], breaker: BreakerStatus, now: float) -> str:
    options = message.options
    eta = options.get("eta")
    runs = f"next attempt in {_seconds(eta / 1000 - now)}" if eta else "waiting for its delay"
    if options.get(message_options.HELD_SINCE) and breaker.is_open:
        held = now - float(options[message_options.HELD_SINCE])
        expiry = svc.settings.llm_unavailable_expiry_seconds - (
            now - message.message_timestamp / 1000
        )
        return (
            f"held back by the breaker for {_seconds(held)}: {breaker_line(breaker, now)}; "
            f"it expires in {_seconds(expiry)}"
        )
    return f"delayed, {attempt_line(svc, options)}, {runs}"


def find_message(client: Any, key: str, message_id: str) -> tuple[str, Message[Any]] | None:
    """The entry of the Redis broker's message hash ``key`` (keyed by each enqueue's own
    ``redis_message_id``) whose Dramatiq ``message_id`` is ``message_id``."""
    for redis_id, data in client.hscan_iter(key, count=1000):
        try:
            message = Message.decode(data)
        except Exception:  # an undecodable entry is not this job
            continue
        if message.message_id == message_id:
            return redis_id.decode(), message
    return None


def _in_flight(broker: RedisBroker, queue: str, redis_id: str) -> bool:
    client, ns = broker.client, broker.namespace
    return any(
        client.sismember(key, redis_id)
        for key in client.scan_iter(f"{ns}:__acks__.*.{queue}", count=1000)
    )


def _in_redis_broker(
    broker: RedisBroker,
    svc: Services,
    queue: str,
    message_id: str,
    breaker: BreakerStatus,
    now: float,
) -> str | None:
    client, ns = broker.client, broker.namespace
    if find_message(client, f"{ns}:{xq_name(queue)}.msgs", message_id):
        return "dead-lettered (the dashboard shows it; llm-worker requeue-dead runs it again)"
    found = find_message(client, f"{ns}:{dq_name(queue)}.msgs", message_id)
    if found is not None:
        return _delayed(svc, found[1], breaker, now)
    found = find_message(client, f"{ns}:{queue}.msgs", message_id)
    if found is None:
        return None
    redis_id, message = found
    if _in_flight(broker, queue, redis_id):
        return f"running now, {attempt_line(svc, message.options)}; {breaker_line(breaker, now)}"
    return f"queued, waiting for a worker; {breaker_line(breaker, now)}"


def describe_job(
    broker: dramatiq.Broker,
    svc: Services,
    message: Message[Any],
    breaker: BreakerStatus,
    *,
    now: float | None = None,
) -> str:
    """One line on where the job sent as ``message`` is now (Redis: exactly; RabbitMQ:
    its report, and the breaker)."""
    now = time.time() if now is None else now
    finished = _finished(svc, message.message_id, now)
    if finished is not None:
        return finished
    if isinstance(broker, RedisBroker):
        where = _in_redis_broker(broker, svc, message.queue_name, message.message_id, breaker, now)
        return where or "not in the broker any more, and no final state recorded"
    return f"in the broker (RabbitMQ queues cannot be searched); {breaker_line(breaker, now)}"
