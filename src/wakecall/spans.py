"""Runs, attempts and deliveries as OpenTelemetry spans, when `opentelemetry-api` is installed
(the `opentelemetry` extra): each span is parented on the trace context its run keeps
(`wakecall.tracecontext`), and the trace headers an attempt or a delivery sends name its own
span, so that what the receiver records nests under it.

Spans go to the process's tracer provider (`opentelemetry.trace.set_tracer_provider`, or an
`opentelemetry-instrument` launch), or to the one given to `use_provider`. Without the API
nothing is imported and nothing else changes: each request sent carries a child of the stored
trace context (the same trace id under a new parent id). The API is imported on the first
span, never at start-up.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from wakecall.tracecontext import TraceContext

__all__ = ["Attributes", "Traced", "record_span", "traced", "use_provider"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: The span attributes of a run, an attempt or a delivery (strings, numbers, booleans).
Attributes = Mapping[str, str | int | float | bool]


class _Otel:
    """The parts of the OpenTelemetry API in use, imported once."""

    def __init__(self) -> None:
        # lazy: an optional dependency (the `opentelemetry` extra), loaded on the first span
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.trace = trace
        self.propagator = TraceContextTextMapPropagator()
        self.provider: Any = None  # None: the process's own
        self._tracer: Any = None

    def use(self, provider: Any) -> None:
        """Make spans with `provider` from now on (None: the process's own)."""
        self.provider = provider
        self._tracer = None

    def recording(self) -> bool:
        """Whether a span made now is recorded: a provider was given, or the process has set
        one. Until then the API hands out spans that record nothing and carry no context of
        their own, so making them is work for nothing."""
        trace = self.trace
        provider = self.provider if self.provider is not None else trace.get_tracer_provider()
        return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))

    def tracer(self) -> Any:
        if self._tracer is None:
            self._tracer = self.trace.get_tracer("wakecall", tracer_provider=self.provider)
        return self._tracer

    def parent(self, trace: TraceContext | None) -> Any:
        """The OpenTelemetry context of a stored trace context (None: a root span)."""
        if trace is None:
            return self.trace.set_span_in_context(self.trace.INVALID_SPAN)
        return self.propagator.extract(trace.headers())

    def headers_of(self, span: Any) -> dict[str, str]:
        carrier: dict[str, str] = {}
        self.propagator.inject(carrier, context=self.trace.set_span_in_context(span))
        return carrier


_otel: _Otel | None = None
_missing = False


def _api() -> _Otel | None:
    """The OpenTelemetry API, or None when it is not installed."""
    global _otel, _missing
    if _otel is None and not _missing:
        try:
            _otel = _Otel()
        except ImportError:
            _missing = True
    return _otel


def _recording_api() -> _Otel | None:
    """The OpenTelemetry API when the spans made now are recorded, otherwise None."""
    api = _api()
    return api if api is not None and api.recording() else None


def use_provider(provider: Any) -> None:
    """Send spans to `provider` (an `opentelemetry.trace.TracerProvider`) instead of the
    process's own; None goes back to the process's own."""
    api = _api()
    if api is None:
        raise RuntimeError(
            "opentelemetry-api is not installed: pip install 'wakecall[opentelemetry]'"
        )
    api.use(provider)


class Traced:
    """An operation in flight: the trace `headers` it sends, and how it ended."""

    def __init__(self, span: Any, headers: dict[str, str], api: _Otel | None) -> None:
        self._span = span
        self._api = api
        self.headers = headers

    def ended(self, attributes: Attributes, error: str | None = None) -> None:
        """Record the outcome: `attributes`, and `error` (None: it went well)."""
        if self._span is None or self._api is None or not self._span.is_recording():
            return
        self._span.set_attributes(dict(attributes))
        if error is not None:
            status = self._api.trace.Status(self._api.trace.StatusCode.ERROR, error)
            self._span.set_status(status)


@contextmanager
def traced(
    name: str, trace: TraceContext | None, attributes: Attributes, *, client: bool = False
) -> Iterator[Traced]:
    """A span `name` around the block, parented on `trace` (a root span without one); what
    the block sends carries `Traced.headers`: the span's context when it has a valid one,
    otherwise a child of `trace` (same trace id and flags, a new parent id), or nothing
    without a `trace`."""
    stored = trace.child().headers() if trace is not None else {}
    api = _recording_api()
    if api is None:
        yield Traced(None, stored, None)
        return
    kind = api.trace.SpanKind.CLIENT if client else api.trace.SpanKind.INTERNAL
    with api.tracer().start_as_current_span(
        name,
        context=api.parent(trace),
        kind=kind,
        attributes=dict(attributes),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield Traced(span, _own_headers(api, span, trace) or stored, api)


def _own_headers(api: _Otel, span: Any, trace: TraceContext | None) -> dict[str, str]:
    """The trace headers that name `span`; none when it has no span id of its own (the API
    without an SDK answers with its parent's context)."""
    context = span.get_span_context()
    if not context.is_valid:
        return {}
    if trace is not None and f"{context.span_id:016x}" == trace.parent_id:
        return {}
    return api.headers_of(span)


def record_span(
    name: str,
    trace: TraceContext | None,
    attributes: Attributes,
    start: datetime,
    end: datetime,
    error: str | None = None,
) -> None:
    """Record a span that already ended (a run, told once it has finished), parented on
    `trace`; nothing without the API or with no provider set."""
    api = _recording_api()
    if api is None:
        return
    span = api.tracer().start_span(
        name, context=api.parent(trace), attributes=dict(attributes), start_time=_ns(start)
    )
    if error is not None and span.is_recording():
        span.set_status(api.trace.Status(api.trace.StatusCode.ERROR, error))
    span.end(end_time=_ns(end))


def _ns(moment: datetime) -> int:
    """`moment` (aware) in nanoseconds since the Unix epoch, exactly."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
