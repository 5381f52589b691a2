"""A W3C trace context in a tool call's `_meta` goes with the runs the call starts: the run's
webhook action and its callback send the same trace id under new span ids, over every store,
through the SDK's real client and a real HTTP receiver on loopback."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
import uvicorn
from mcp import Client
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from support.loopback import CONFIG, Loop, loop_settings, real_time_clock
from wakecall import spans
from wakecall.server import build_server, open_runtime
from wakecall.store import Store

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"
TRACESTATE = "vendor=opaque,other=1"


@dataclass
class Recorder:
    """A loopback server that records the headers of each request, by path; `/fails-once`
    answers 500 to its first request."""

    port: int = 0
    seen: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    changed: anyio.Event = field(default_factory=anyio.Event)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def record(self, request: Request) -> Response:
        path = request.url.path
        self.seen.setdefault(path, []).append(dict(request.headers))
        self.changed.set()
        self.changed = anyio.Event()
        if path == "/fails-once" and len(self.seen[path]) == 1:
            return JSONResponse({"error": "down"}, status_code=500)
        return JSONResponse({"ok": True})

    async def wait_for(self, predicate: Callable[[], object]) -> None:
        with anyio.fail_after(10):
            while not predicate():
                await self.changed.wait()


@asynccontextmanager
async def serve_recorder() -> AsyncIterator[Recorder]:
    rec = Recorder()
    paths = ("/action", "/fails-once", "/hook")
    app = Starlette(routes=[Route(p, rec.record, methods=["POST"]) for p in paths])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    rec.port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        with anyio.fail_after(5):
            while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
                await anyio.sleep(0.01)
        yield rec
        server.should_exit = True
    sock.close()


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    async with serve_recorder() as rec:
        yield rec


@pytest.fixture
async def loop(tmp_path: Path, store: Store) -> AsyncIterator[Loop]:
    """An agent on the SDK's client over `store` (a SQLite file, or PostgreSQL)."""
    clock = real_time_clock()
    with anyio.fail_after(30):
        async with open_runtime(
            loop_settings(tmp_path), store=store, clock=clock, config=CONFIG
        ) as rt:
            async with Client(build_server(rt)) as client:
                yield Loop(rt, client, clock)


async def call(loop: Loop, tool: str, meta: dict[str, Any] | None, **args: Any) -> dict[str, Any]:
    result = await loop.client.call_tool(tool, args, meta=meta)  # type: ignore[arg-type]
    assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
    assert result.structured_content is not None
    return result.structured_content


def parts(headers: dict[str, str]) -> tuple[str, str, str, str]:
    version, trace_id, span_id, flags = headers["traceparent"].split("-")
    return version, trace_id, span_id, flags


async def webhook_task(loop: Loop, recorder: Recorder, path: str, **extra: Any) -> dict[str, Any]:
    return await call(
        loop,
        "create_task",
        None,
        name="sync",
        schedule="on demand",
        action={"type": "webhook", "url": recorder.url(path)},
        callback_url=recorder.url("/hook"),
        **extra,
    )


async def test_run_now_sends_the_calls_trace_on_each_attempt_and_the_callback(
    loop: Loop, recorder: Recorder, store: Store
) -> None:
    retry = {"attempts": 2, "backoff": "none", "delay": "5s", "jitter": False}
    task = await webhook_task(loop, recorder, "/fails-once", retry=retry)
    meta = {"traceparent": TRACEPARENT, "tracestate": TRACESTATE}
    await call(loop, "run_now", meta, task_id=task["id"])
    await loop.step(timedelta(0))
    await recorder.wait_for(lambda: recorder.seen.get("/fails-once"))
    await loop.step(timedelta(seconds=5))
    await recorder.wait_for(lambda: recorder.seen.get("/hook"))
    first, second = recorder.seen["/fails-once"]
    (callback,) = recorder.seen["/hook"]
    sent = [first, second, callback]
    assert [parts(h)[1] for h in sent] == [TRACE_ID] * 3
    assert [parts(h)[0] for h in sent] == ["00"] * 3
    assert [parts(h)[3] for h in sent] == ["01"] * 3
    span_ids = {parts(h)[2] for h in sent}
    assert len(span_ids) == 3 and CALLER_SPAN not in span_ids  # a new span each
    assert [h["tracestate"] for h in sent] == [TRACESTATE] * 3
    (run,) = await store.list_runs(loop.rt.owner(), task_id=task["id"])
    assert run.traceparent == TRACEPARENT and run.tracestate == TRACESTATE


async def test_create_task_traces_the_runs_of_its_first_fire_only(
    loop: Loop, recorder: Recorder
) -> None:
    await call(
        loop,
        "create_task",
        {"traceparent": TRACEPARENT},
        name="every minute",
        schedule="@every 1m",
        action={"type": "webhook", "url": recorder.url("/action")},
    )
    await loop.step(timedelta(minutes=1))
    await recorder.wait_for(lambda: recorder.seen.get("/action"))
    await loop.step(timedelta(minutes=1))
    await recorder.wait_for(lambda: len(recorder.seen.get("/action", [])) == 2)
    first, second = recorder.seen["/action"]
    assert parts(first)[1] == TRACE_ID and parts(first)[2] != CALLER_SPAN
    assert "tracestate" not in first  # none was received
    assert "traceparent" not in second  # a later fire was not started by that call


async def test_a_wakeups_run_keeps_the_calls_trace(loop: Loop, store: Store) -> None:
    meta = {"traceparent": TRACEPARENT}
    wakeup = await call(loop, "schedule_wakeup", meta, **{"in": "2m", "reason": "look again"})
    await loop.step(timedelta(minutes=2))
    (run,) = await store.list_runs(loop.rt.owner(), task_id=wakeup["wakeup_id"])
    assert run.status == "success" and run.traceparent == TRACEPARENT


@pytest.mark.parametrize(
    "traceparent",
    [
        f"00-{TRACE_ID.upper()}-{CALLER_SPAN}-01",  # uppercase hex
        f"00-{'0' * 32}-{CALLER_SPAN}-01",  # an all-zero trace id
        f"ff-{TRACE_ID}-{CALLER_SPAN}-01",  # the forbidden version
        f"00-{TRACE_ID}-{CALLER_SPAN}-01-extra",  # version 00 has nothing after its flags
        "not a traceparent",
        42,
    ],
)
async def test_a_malformed_traceparent_is_ignored(
    loop: Loop, recorder: Recorder, store: Store, traceparent: object
) -> None:
    task = await webhook_task(loop, recorder, "/action")
    meta = {"traceparent": traceparent, "tracestate": TRACESTATE}
    run = await call(loop, "run_now", meta, task_id=task["id"])
    await loop.step(timedelta(0))
    await recorder.wait_for(lambda: recorder.seen.get("/hook"))
    (action,) = recorder.seen["/action"]
    (callback,) = recorder.seen["/hook"]
    for headers in (action, callback):
        assert "traceparent" not in headers and "tracestate" not in headers
    stored = await store.get_run(loop.rt.owner(), run["id"])
    assert stored.traceparent is None and stored.tracestate is None


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """OpenTelemetry's in-memory exporter, receiving wakecall's spans during the test."""
    found = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(found))
    spans.use_provider(provider)
    try:
        yield found
    finally:
        spans.use_provider(None)
        provider.shutdown()


async def test_runs_attempts_and_deliveries_are_spans_under_the_calls_context(
    loop: Loop, recorder: Recorder, exporter: InMemorySpanExporter
) -> None:
    task = await webhook_task(loop, recorder, "/action")
    meta = {"traceparent": TRACEPARENT, "tracestate": TRACESTATE}
    run = await call(loop, "run_now", meta, task_id=task["id"])
    await loop.step(timedelta(0))
    await recorder.wait_for(lambda: recorder.seen.get("/hook"))
    await loop.settle()
    made = {span.name: span for span in exporter.get_finished_spans()}
    assert set(made) == {"wakecall.run", "wakecall.attempt", "wakecall.delivery"}
    for span in made.values():
        assert span.parent is not None and span.parent.is_remote
        assert f"{span.parent.trace_id:032x}" == TRACE_ID
        assert f"{span.parent.span_id:016x}" == CALLER_SPAN
        assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert made["wakecall.run"].attributes["wakecall.run.id"] == run["id"]
    assert made["wakecall.run"].attributes["wakecall.run.status"] == "success"
    assert made["wakecall.attempt"].attributes["wakecall.run.attempt"] == 1
    assert made["wakecall.delivery"].attributes["http.response.status_code"] == 200
    # What was sent names the span that sent it, so the receiver's spans nest under it.
    (action,) = recorder.seen["/action"]
    (callback,) = recorder.seen["/hook"]
    assert parts(action)[2] == f"{made['wakecall.attempt'].context.span_id:016x}"
    assert parts(callback)[2] == f"{made['wakecall.delivery'].context.span_id:016x}"
    assert action["tracestate"] == callback["tracestate"] == TRACESTATE


async def test_a_failed_attempt_is_an_error_span(
    loop: Loop, recorder: Recorder, exporter: InMemorySpanExporter
) -> None:
    task = await webhook_task(loop, recorder, "/fails-once")
    await call(loop, "run_now", {"traceparent": TRACEPARENT}, task_id=task["id"])
    await loop.step(timedelta(0))
    await recorder.wait_for(lambda: recorder.seen.get("/hook"))
    await loop.settle()
    made = {span.name: span for span in exporter.get_finished_spans()}
    for name in ("wakecall.attempt", "wakecall.run"):
        assert made[name].status.status_code == StatusCode.ERROR
        assert "HTTP 500" in (made[name].status.description or "")
    assert made["wakecall.delivery"].status.status_code == StatusCode.UNSET
