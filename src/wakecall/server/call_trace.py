"""The W3C trace context of the tool call being answered: a 2026-07-28 client puts
`traceparent` (and `tracestate`) in a request's `_meta`, which the SDK hands over as the
request context's `meta`. The tools that start runs pass it on to them
(`wakecall.tracecontext`); a malformed one is ignored, never refused."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from wakecall.tracecontext import TraceContext, trace_from_carrier

__all__ = ["call_trace", "tracing_call"]

_CALL_TRACE: ContextVar[TraceContext | None] = ContextVar("wakecall_call_trace", default=None)


def call_trace() -> TraceContext | None:
    """The trace context of the current tool call (None: it carried none, or a bad one)."""
    return _CALL_TRACE.get()


@contextmanager
def tracing_call(meta: Mapping[str, Any] | None) -> Iterator[TraceContext | None]:
    """Answer a call whose request `_meta` is `meta` inside this block."""
    trace = trace_from_carrier(meta)
    token = _CALL_TRACE.set(trace)
    try:
        yield trace
    finally:
        _CALL_TRACE.reset(token)
