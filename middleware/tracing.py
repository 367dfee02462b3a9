"""One trace from the producer to Core: the trace context in the message options, and a
span per message processed."""

from __future__ import annotations

import time
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

from llm_worker.identity import delivery_key
from llm_worker.jobs import retry as message_options
from llm_worker.observability import tracing


def queue_wait_ms(message: MessageProxy, now_ms: int) -> int:
    """Milliseconds ``message`` waited in its queue since it was due: since it was sent,
    or, when it was delayed (a retry, a hold, a wait), since its delay ended."""
    due = message.options.get("eta") or message.message_timestamp
    return max(0, now_ms - int(due))


def held_ms(options: dict[str, Any], mark: str, now: float) -> int | None:
    """Milliseconds since the hold ``mark`` (an option holding seconds since the epoch)
    began, or ``None`` when the job was not held."""
    since = options.get(mark)
    if not isinstance(since, int | float) or isinstance(since, bool):
        return None
    return max(0, int((now - since) * 1000))


def process_attributes(message: MessageProxy) -> dict[str, tracing.AttributeValue]:
    """The attributes of a message's processing span: the messaging conventions' own,
    the job's attempt, its queue wait, and how long it has been held and has waited."""
    now = time.time()
    options = message.options
    attributes: dict[str, tracing.AttributeValue] = {
        "messaging.system": "dramatiq",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": message.queue_name,
        "messaging.message.id": message.message_id,
        "llm_worker.actor": message.actor_name,
        "llm_worker.job.attempt": message_options.attempt(options),
        "llm_worker.queue_wait_ms": queue_wait_ms(message, int(now * 1000)),
    }
    for mark, name in (
        (message_options.HELD_SINCE, "llm_worker.breaker_held_ms"),
        (message_options.CORE_HELD_SINCE, "llm_worker.core_held_ms"),
    ):
        held = held_ms(options, mark, now)
        if held is not None:
            attributes[name] = held
    for option, name in (
        (message_options.CAPACITY_WAITS, "llm_worker.capacity_waits"),
        (message_options.LEASE_WAITS, "llm_worker.lease_waits"),
        (message_options.SERVER_ERRORS, "llm_worker.server_errors"),
    ):
        if options.get(option):
            attributes[name] = int(options[option])
    return attributes


class Tracing(Middleware):
    """Carry a trace from the producer through every attempt of a job.

    - ``before_enqueue``: a message sent inside an active span carries its W3C trace
      context in its options (``traceparent``, ``tracestate``); a message that has one
      keeps it, so a retry, a hold, a wait and a requeue stay in the trace the job
      started in.  Without OpenTelemetry, or outside a span, nothing is added.
    - ``after_process_boot``: turns tracing on in a worker process when OTLP export is
      configured (:func:`llm_worker.observability.tracing.configure`).
    - ``before_process_message`` to ``after_process_message``/``after_skip_message``: one
      span per message processed, a child of the context its options carry, current
      while the message is processed (the LLM calls, Core calls and messages sent are its
      children); :class:`~middleware.JobOutcomeLog` adds the job's outcome to it.

    Put it before :class:`~middleware.JobOutcomeLog` in the stack: its ``after_*`` hooks
    then run last, when the outcome is known.

    Parameters:
      service_name: ``service.name`` of this process's spans unless ``OTEL_SERVICE_NAME``
        says otherwise.
    """

    def __init__(self, *, service_name: str = tracing.DEFAULT_SERVICE_NAME) -> None:
        self.service_name = service_name
        self._open: dict[str, tracing.OpenSpan | Any] = {}

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        tracing.configure(service_name=self.service_name)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        tracing.shutdown()

    def before_enqueue(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None
    ) -> None:
        tracing.inject(message.options)

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if not tracing.enabled():
            return
        key = delivery_key(message)
        stale = self._open.pop(key, None)
        if stale is not None:  # a hook failed before its end: close it here
            stale.close()
        self._open[key] = tracing.open_span(
            f"process {message.actor_name}",
            kind="consumer",
            attributes=process_attributes(message),
            parent=tracing.extract(message.options),
        )

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._close(message, exception)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._close(message, None)

    def _close(self, message: MessageProxy, exception: BaseException | None) -> None:
        if not self._open:
            return
        opened = self._open.pop(delivery_key(message), None)
        if opened is not None:
            opened.close(exception)
