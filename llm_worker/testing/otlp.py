"""An OTLP/HTTP receiver: the collector's side of trace and metric export, for tests and
benchmarks.

It decodes each ``POST /v1/traces`` (``ExportTraceServiceRequest``) and
``POST /v1/metrics`` (``ExportMetricsServiceRequest``) of the ``opentelemetry-proto``
package and keeps the spans and metric names, or (``keep=False``) only counts the spans.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: OTLP's span kinds by number (``opentelemetry.proto.trace.v1.Span.SpanKind``).
SPAN_KINDS = {
    0: "unspecified",
    1: "internal",
    2: "server",
    3: "client",
    4: "producer",
    5: "consumer",
}
#: OTLP's status codes by number.
STATUS_CODES = {0: "unset", 1: "ok", 2: "error"}


def _value(any_value: Any) -> Any:
    """The Python value of an OTLP ``AnyValue``."""
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


def _attributes(key_values: Any) -> dict[str, Any]:
    return {item.key: _value(item.value) for item in key_values}


@dataclass(frozen=True)
class ReceivedSpan:
    """One exported span, decoded.

    ``events`` are ``(name, attributes)``; ``start`` and ``end`` are nanoseconds since the
    epoch; ``service`` is the resource's ``service.name``.
    """

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: str
    attributes: dict[str, Any]
    events: tuple[tuple[str, dict[str, Any]], ...]
    status: str
    service: str
    start: int
    end: int
    links: tuple[str, ...] = field(default_factory=tuple)

    def event_names(self) -> list[str]:
        """The names of its events, in order."""
        return [name for name, _ in self.events]


class OTLPReceiver:
    """A threaded OTLP/HTTP receiver on 127.0.0.1 (a free port).

    Parameters:
      keep: keep the decoded spans (``False``: count them only, as a benchmark's sink).
    """

    def __init__(self, *, keep: bool = True) -> None:
        self.keep = keep
        self.lock = threading.Lock()
        self.spans: list[ReceivedSpan] = []
        self.span_count = 0
        #: Metric names received, with their data points' attributes.
        self.metrics: dict[str, list[dict[str, Any]]] = {}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                if self.path.endswith("/v1/traces"):
                    owner._traces(raw)
                elif self.path.endswith("/v1/metrics"):
                    owner._metrics(raw)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        """``OTEL_EXPORTER_OTLP_ENDPOINT`` for this receiver."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _traces(self, raw: bytes) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        request = ExportTraceServiceRequest.FromString(raw)
        received = []
        count = 0
        for resource_spans in request.resource_spans:
            service = _attributes(resource_spans.resource.attributes).get("service.name", "")
            for scope_spans in resource_spans.scope_spans:
                count += len(scope_spans.spans)
                if not self.keep:
                    continue
                received += [
                    ReceivedSpan(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        kind=SPAN_KINDS.get(span.kind, str(span.kind)),
                        attributes=_attributes(span.attributes),
                        events=tuple(
                            (event.name, _attributes(event.attributes)) for event in span.events
                        ),
                        status=STATUS_CODES.get(span.status.code, str(span.status.code)),
                        service=str(service),
                        start=span.start_time_unix_nano,
                        end=span.end_time_unix_nano,
                        links=tuple(link.trace_id.hex() for link in span.links),
                    )
                    for span in scope_spans.spans
                ]
        with self.lock:
            self.spans += received
            self.span_count += count

    def _metrics(self, raw: bytes) -> None:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
        )

        request = ExportMetricsServiceRequest.FromString(raw)
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    points = getattr(metric, kind).data_points if kind else []
                    with self.lock:
                        self.metrics.setdefault(metric.name, []).extend(
                            _attributes(point.attributes) for point in points
                        )

    def received(self) -> list[ReceivedSpan]:
        """The spans received so far, in the order they came."""
        with self.lock:
            return list(self.spans)

    def wait_for(
        self, predicate: Callable[[list[ReceivedSpan]], bool], timeout: float = 20.0
    ) -> list[ReceivedSpan]:
        """The spans once ``predicate`` holds of them.

        Raises:
          AssertionError: when it does not within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            spans = self.received()
            if predicate(spans):
                return spans
            if time.monotonic() > deadline:
                names = sorted({span.name for span in spans})
                raise AssertionError(f"spans never matched; received {len(spans)}: {names}")
            time.sleep(0.02)

    def clear(self) -> None:
        """Forget what was received."""
        with self.lock:
            self.spans.clear()
            self.span_count = 0
            self.metrics.clear()

    def close(self) -> None:
        """Stop listening."""
        self._server.shutdown()
        self._server.server_close()
