"""Without OpenTelemetry nothing is imported and nothing breaks: the headers sent are a child
of the stored trace context."""

from __future__ import annotations

import subprocess
import sys

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

WITHOUT_OPENTELEMETRY = f"""
import sys
sys.modules["opentelemetry"] = None  # as if not installed: its import raises ImportError
from wakecall.spans import traced
from wakecall.tracecontext import TraceContext
with traced("wakecall.attempt", TraceContext("{TRACEPARENT}", "a=1"), {{}}) as span:
    span.ended({{"wakecall.attempt.status": "success"}}, None)
    print(span.headers["traceparent"], span.headers["tracestate"])
with traced("wakecall.attempt", None, {{}}) as span:
    print(span.headers)
"""


def test_without_opentelemetry_each_request_sends_a_child_of_the_stored_context() -> None:
    child, state, nothing = _printed_by(WITHOUT_OPENTELEMETRY).split()
    version, trace_id, parent_id, flags = child.split("-")
    assert (version, trace_id, flags, state) == ("00", TRACEPARENT[3:35], "01", "a=1")
    assert parent_id != TRACEPARENT[36:52] and len(parent_id) == 16
    assert nothing == "{}"


def test_serving_imports_no_opentelemetry_before_a_span_is_made() -> None:
    code = (
        "import sys, wakecall.server, wakecall.cli, wakecall.engine, wakecall.spans; "
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    assert _printed_by(code).strip() == "[]"


WITH_THE_API_AND_NO_PROVIDER = f"""
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from wakecall.spans import traced
from wakecall.tracecontext import TraceContext
stored = TraceContext("{TRACEPARENT}", None)
with traced("wakecall.attempt", stored, {{}}) as span:
    print(span.headers["traceparent"])
found = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(found))
trace.set_tracer_provider(provider)
with traced("wakecall.attempt", stored, {{}}) as span:
    print(span.headers["traceparent"])
(made,) = found.get_finished_spans()
print(f"{{made.context.span_id:016x}}")
"""


def test_spans_are_made_once_the_process_sets_a_provider() -> None:
    """With the API but no provider, an attempt sends a child of the stored context; a
    provider the process sets later records the spans made from then on, and what is sent
    names them."""
    before, after, recorded = _printed_by(WITH_THE_API_AND_NO_PROVIDER).split()
    assert before.split("-")[1] == after.split("-")[1] == TRACEPARENT[3:35]
    assert before.split("-")[2] not in (TRACEPARENT[36:52], recorded)
    assert after.split("-")[2] == recorded


def _printed_by(code: str) -> str:
    """What `code` prints, run in an interpreter of its own (each test needs a fresh one:
    what is imported, and the process's tracer provider, which is set once)."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout
