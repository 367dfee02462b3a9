"""Traces and GenAI metrics (OpenTelemetry): the one seam between this service and the
``opentelemetry`` packages (the ``otel`` extra).

Everything else calls the small functions here, which do nothing until :func:`configure`
turned tracing on in the process, and nothing at all when the packages are not
installed:

- :func:`inject` writes the active span's W3C ``traceparent`` (and ``tracestate``) into
  a Dramatiq message's options, :func:`extract` reads them back on the worker;
- :func:`span` opens a span for a ``with`` block, :func:`open_span` one that a later hook
  closes (a job attempt spans the middleware's ``before_*`` and ``after_*`` hooks);
- :func:`current_span` and :func:`add_event` annotate the span of the running code;
- :func:`record_llm_call` adds one LLM call to the GenAI metrics.

Which process traces, and where to, is said by the standard OpenTelemetry environment
variables, read by :func:`configure` and the SDK (see the manual's Tracing page): spans
are exported over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set.  Nothing here reads the environment or
imports ``opentelemetry`` at import time.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Protocol

logger = logging.getLogger("llm_worker.tracing")

#: The message option carrying the W3C trace context's ``traceparent`` header.
TRACEPARENT = "traceparent"
#: The message option carrying the W3C trace context's ``tracestate`` header.
TRACESTATE = "tracestate"
#: The message options of the trace context: kept by every re-enqueued copy and by an
#: operator's requeue (:data:`llm_worker.jobs.retry.OPTIONS`).
CONTEXT_OPTIONS = (TRACEPARENT, TRACESTATE)

#: The instrumentation scope of this service's spans and metrics.
SCOPE = "llm_worker"
#: ``service.name`` of a worker unless ``OTEL_SERVICE_NAME`` (or ``service.name`` in
#: ``OTEL_RESOURCE_ATTRIBUTES``) says otherwise.
DEFAULT_SERVICE_NAME = "llm-worker"
#: The variables that turn OTLP/HTTP export of traces on, the specific one first.
TRACES_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
#: The variables that turn OTLP/HTTP export of metrics on, the specific one first.
METRICS_ENDPOINT_VARIABLES = (
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
#: The GenAI instrumentations' variable that puts prompts and answers on the LLM spans
#: (``true``); off by default.
CAPTURE_CONTENT_VARIABLE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

#: Bucket bounds of ``gen_ai.client.token.usage``, as the GenAI conventions advise.
TOKEN_BUCKETS = tuple(float(4**n) for n in range(14))
#: Bucket bounds of ``gen_ai.client.operation.duration`` in seconds, as advised.
DURATION_BUCKETS = tuple(0.01 * 2**n for n in range(14))
#: Characters of an error's text kept as a span's status description.
ERROR_TEXT_CHARS = 300

SpanKind = Literal["internal", "client", "producer", "consumer", "server"]
AttributeValue = str | bool | int | float | Sequence[str] | Sequence[int] | Sequence[float]
Attributes = Mapping[str, AttributeValue]


class Span(Protocol):
    """What this service does with a span: the part of OpenTelemetry's ``Span`` it uses."""

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Set one attribute."""
        ...

    def add_event(self, name: str, attributes: Attributes | None = None) -> None:
        """Add a timestamped event with ``attributes``."""
        ...

    def is_recording(self) -> bool:
        """Whether what is set on the span is kept."""
        ...


class _NoSpan:
    """The span while tracing is off: every method does nothing, and it is its own
    ``with`` block."""

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Do nothing."""

    def add_event(self, name: str, attributes: Attributes | None = None) -> None:
        """Do nothing."""

    def is_recording(self) -> bool:
        """Never."""
        return False

    def close(self, error: BaseException | None = None) -> None:
        """Do nothing."""

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None


#: The one span of every call while tracing is off.
NO_SPAN = _NoSpan()


@dataclass
class _Tracing:
    """What :func:`configure` set up in this process."""

    tracer: Any
    tracer_provider: Any
    meter_provider: Any
    token_usage: Any
    duration: Any
    capture_content: bool


_lock = threading.Lock()
_state: _Tracing | None = None


def enabled() -> bool:
    """Whether this process traces (:func:`configure` turned it on)."""
    return _state is not None


def captures_content() -> bool:
    """Whether prompts and answers go on the LLM spans
    (``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``)."""
    return _state is not None and _state.capture_content


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() == "true"


def _exporting(endpoints: Sequence[str], exporter_variable: str) -> bool:
    """Whether an OTLP endpoint is set for a signal and its exporter is not ``none``."""
    if os.environ.get(exporter_variable, "otlp").strip().lower() == "none":
        return False
    return any(os.environ.get(name, "").strip() for name in endpoints)


def configure(*, service_name: str = DEFAULT_SERVICE_NAME) -> bool:
    """Turn tracing on in this process when OTLP export is configured; return whether it
    is on.  Call it once the process is what it stays (a worker process at boot: the
    exporter's thread does not survive a fork).

    Spans are exported over OTLP/HTTP, in batches, when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (and ``OTEL_TRACES_EXPORTER`` is not
    ``none``, nor ``OTEL_SDK_DISABLED`` ``true``); the GenAI metrics too when
    ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` or the common endpoint is set.  The SDK reads
    the rest of the standard variables itself (``OTEL_TRACES_SAMPLER``,
    ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_BSP_*``...).  This process's tracer provider
    becomes the global one unless another was set before.

    Parameters:
      service_name: ``service.name`` unless ``OTEL_SERVICE_NAME`` or
        ``OTEL_RESOURCE_ATTRIBUTES`` name the service.
    """
    global _state
    with _lock:
        if _state is not None:
            return True
        if _env_true("OTEL_SDK_DISABLED"):
            return False
        if not _exporting(TRACES_ENDPOINT_VARIABLES, "OTEL_TRACES_EXPORTER"):
            return False
        try:
            _state = _set_up(service_name)
        except ImportError as exc:
            logger.warning(
                "OTLP export is configured but the otel extra is not installed (%s): no traces",
                exc,
            )
            return False
        return True


def _set_up(service_name: str) -> _Tracing:
    """The tracer provider and (when exported) the meter provider, with OTLP/HTTP export.

    Raises:
      ImportError: when the ``otel`` extra is not installed.
    """
    from opentelemetry import metrics, trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    resource = Resource.create({} if named else {"service.name": service_name})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(tracer_provider)
    meter_provider = None
    meter: Any = metrics.NoOpMeter(SCOPE)
    if _exporting(METRICS_ENDPOINT_VARIABLES, "OTEL_METRICS_EXPORTER"):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        reader = PeriodicExportingMetricReader(OTLPMetricExporter())
        meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
        meter = meter_provider.get_meter(SCOPE)
    return _Tracing(
        tracer=tracer_provider.get_tracer(SCOPE),
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        token_usage=meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        ),
        duration=meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        ),
        capture_content=_env_true(CAPTURE_CONTENT_VARIABLE),
    )


def shutdown() -> None:
    """Export what is left and turn tracing off in this process (a worker stopping)."""
    global _state
    with _lock:
        state, _state = _state, None
    if state is None:
        return
    state.tracer_provider.shutdown()
    if state.meter_provider is not None:
        state.meter_provider.shutdown()


def inject(carrier: MutableMapping[str, Any]) -> None:
    """Write the active span's trace context into ``carrier`` (a message's options) as
    ``traceparent`` and ``tracestate``, unless it carries one already (a re-enqueued
    copy keeps the trace it started in).

    Nothing is written, and nothing imported, when no span is active: in a producer
    without OpenTelemetry (nothing imported ``opentelemetry.trace``), or outside a span.
    """
    if "opentelemetry.trace" not in sys.modules or TRACEPARENT in carrier:
        return
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    if trace.get_current_span().get_span_context().is_valid:
        TraceContextTextMapPropagator().inject(carrier)


def extract(carrier: Mapping[str, Any]) -> Any:
    """The parent context ``carrier`` (a message's options) holds: an empty one (a new
    trace, whatever span is current) when it holds none; ``None`` when tracing is off."""
    if _state is None:
        return None
    from opentelemetry.context import Context
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    if TRACEPARENT not in carrier:
        return Context()

    headers = {name: str(carrier[name]) for name in CONTEXT_OPTIONS if name in carrier}
    return TraceContextTextMapPropagator().extract(headers)


class OpenSpan:
    """A span made current by :func:`open_span` until :meth:`close`.

    Attributes:
      span: the OpenTelemetry span.
    """

    def __init__(self, span: Any, token: object) -> None:
        self.span = span
        self._token = token

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Set one attribute."""
        self.span.set_attribute(key, value)

    def add_event(self, name: str, attributes: Attributes | None = None) -> None:
        """Add an event."""
        self.span.add_event(name, attributes)

    def is_recording(self) -> bool:
        """Whether the span is sampled."""
        return bool(self.span.is_recording())

    def close(self, error: BaseException | None = None) -> None:
        """End the span (marking it failed with ``error``, when given) and make the span
        that was current before it current again (on the thread that opened it)."""
        from opentelemetry import context

        if error is not None:
            mark_error(self.span, error)
        try:
            context.detach(self._token)  # type: ignore[arg-type]
        finally:
            self.span.end()

    def __enter__(self) -> OpenSpan:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(error)


def error_type(error: BaseException) -> str:
    """``error.type`` of an exception: its class's qualified name (module included but
    for built-ins)."""
    cls = type(error)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def mark_error(span: Any, error: BaseException | str) -> None:
    """Mark ``span`` failed: ``error.type`` (unless set before, e.g. to an HTTP status) and
    an error status with the error's text (its first :data:`ERROR_TEXT_CHARS` characters,
    as the job's log line has it)."""
    from opentelemetry.trace import Status, StatusCode

    if isinstance(error, BaseException):
        if "error.type" not in (getattr(span, "attributes", None) or {}):  # a status said it
            span.set_attribute("error.type", error_type(error))
        text = f"{type(error).__name__}: {error}"
    else:
        text = error
    span.set_status(Status(StatusCode.ERROR, text[:ERROR_TEXT_CHARS]))


def open_span(
    name: str,
    *,
    kind: SpanKind = "internal",
    attributes: Attributes | None = None,
    parent: Any = None,
) -> OpenSpan | _NoSpan:
    """Start a span and make it current until its :meth:`~OpenSpan.close`; use it as a
    ``with`` block, or close it from a later hook on the same thread.

    Parameters:
      name: the span's name.
      kind: its OpenTelemetry kind.
      attributes: its first attributes.
      parent: a context from :func:`extract` (default: the current span).
    """
    state = _state
    if state is None:
        return NO_SPAN
    from opentelemetry import context, trace

    span = state.tracer.start_span(
        name,
        context=parent,
        kind=getattr(trace.SpanKind, kind.upper()),
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    )
    token = context.attach(trace.set_span_in_context(span, parent))
    return OpenSpan(span, token)


def span(
    name: str,
    *,
    kind: SpanKind = "internal",
    attributes: Attributes | None = None,
    parent: Any = None,
) -> OpenSpan | _NoSpan:
    """A span for a ``with`` block: current inside it, marked failed by an exception
    leaving it (see :func:`open_span` for the parameters)."""
    return open_span(name, kind=kind, attributes=attributes, parent=parent)


def current_span() -> Span:
    """The span of the running code (one that records nothing when there is none)."""
    if _state is None:
        return NO_SPAN
    from opentelemetry import trace

    current: Span = trace.get_current_span()
    return current


def add_event(name: str, attributes: Attributes | None = None) -> None:
    """Add an event to the span of the running code."""
    if _state is not None:
        current_span().add_event(name, attributes)


def record_llm_call(
    attributes: Attributes, *, seconds: float, input_tokens: int = 0, output_tokens: int = 0
) -> None:
    """Add one LLM call to ``gen_ai.client.operation.duration`` and, for an answer, its
    tokens to ``gen_ai.client.token.usage`` (``gen_ai.token.type`` ``input``, ``output``).

    Parameters:
      attributes: the call's GenAI attributes (operation, provider, models, error type).
      seconds: how long the call took.
      input_tokens: the prompt's tokens (0: no answer).
      output_tokens: the answer's tokens.
    """
    state = _state
    if state is None:
        return
    state.duration.record(seconds, attributes)
    if input_tokens or output_tokens:
        state.token_usage.record(input_tokens, {**attributes, "gen_ai.token.type": "input"})
        state.token_usage.record(output_tokens, {**attributes, "gen_ai.token.type": "output"})
