"""Helpers for action tests: a context for a task with a given action, and a small HTTP/1.1
server on 127.0.0.1 with a few routes that answer the way webhook targets do."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.abc
import pytest

from wakecall.actions import ActionContext
from wakecall.models import (
    CatchUp,
    Overlap,
    RetryPolicy,
    Run,
    RunStatus,
    Task,
    TaskStatus,
    Trigger,
)
from wakecall.testing import FakeClock

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

MakeContext = Callable[..., ActionContext]


@pytest.fixture
def make_context() -> MakeContext:
    """`make_context(action, attempt=1)`: the context of attempt `attempt` of a manual run of a
    task whose action is `action`."""

    def make(action: dict[str, Any], attempt: int = 1) -> ActionContext:
        task = Task(
            id="tsk_test",
            owner="alice",
            name="job",
            kind="task",
            schedule={"type": "once", "at": NOW.isoformat()},
            timezone="UTC",
            action=action,
            retry=RetryPolicy(),
            timeout_s=None,
            overlap=Overlap.SKIP,
            max_queued=1,
            catchup=CatchUp.LATEST,
            catchup_window_s=3600.0,
            max_runs=None,
            expires_at=None,
            status=TaskStatus.ACTIVE,
            pause_note=None,
            callback_url=None,
            metadata={},
            idempotency_key=None,
            created_at=NOW,
            updated_at=NOW,
            next_fire_at=None,
            last_fire_at=None,
            run_count=0,
        )
        run = Run(
            id="run_test",
            task_id=task.id,
            owner=task.owner,
            trigger=Trigger.MANUAL,
            scheduled_for=None,
            due_at=NOW,
            status=RunStatus.RUNNING,
            attempt=attempt,
            max_attempts=3,
            created_at=NOW,
        )
        return ActionContext(task=task, run=run, attempt=attempt, clock=FakeClock(NOW))

    return make


@dataclass
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookTarget:
    port: int
    requests: list[Received] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


BIG_TEXT = "0123456789" * 10_000  # 100,000 bytes


def _route(request: Received) -> tuple[str, dict[str, str], bytes]:
    """Status line, headers and body for a request."""
    path = request.target.split("?", 1)[0]
    if path == "/json":
        echo = {
            "method": request.method,
            "headers": request.headers,
            "body": json.loads(request.body) if request.body else None,
        }
        return "200 OK", {"Content-Type": "application/json"}, json.dumps(echo).encode()
    if path == "/text":
        return "200 OK", {"Content-Type": "text/plain; charset=utf-8"}, "fine, thanks ✓".encode()
    if path == "/bad-json":
        return "200 OK", {"Content-Type": "application/json"}, b"{not json"
    if path == "/big":
        return "200 OK", {"Content-Type": "text/plain"}, BIG_TEXT.encode()
    if path == "/big-json":
        body = json.dumps({"items": list(range(20_000))}).encode()
        return "200 OK", {"Content-Type": "application/json"}, body
    if path == "/empty":
        return "204 No Content", {}, b""
    if path == "/fail":
        body = b'{"error": "database is down",\n "retry": true}'
        return "503 Service Unavailable", {"Content-Type": "application/json"}, body
    if path == "/missing":
        return "404 Not Found", {"Content-Type": "text/plain"}, b"no such hook\n"
    if path == "/redirect":
        return "302 Found", {"Location": "/moved/here"}, b""
    return "404 Not Found", {}, b""


async def _handle(stream: anyio.abc.ByteStream, target: WebhookTarget) -> None:
    async with stream:
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                data += await stream.receive()
            head, _, body = data.partition(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines)}
            length = int(headers.get("content-length", "0"))
            while len(body) < length:
                body += await stream.receive()
            request = Received(method, path, headers, body)
            target.requests.append(request)
            if path == "/slow":
                await anyio.sleep_forever()
            status, response_headers, response_body = _route(request)
            head_lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in response_headers.items())]
            head_lines += [f"Content-Length: {len(response_body)}", "Connection: close"]
            await stream.send(("\r\n".join(head_lines) + "\r\n\r\n").encode() + response_body)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return


@pytest.fixture
async def webhook_target() -> AsyncIterator[WebhookTarget]:
    """A webhook target on 127.0.0.1. Routes: /json (echoes the request), /text, /bad-json,
    /big, /big-json, /empty (204), /fail (503), /missing (404), /redirect (302), /slow (never
    answers)."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    target = WebhookTarget(port=listener.extra(anyio.abc.SocketAttribute.local_port))

    async def handle(stream: anyio.abc.SocketStream) -> None:
        await _handle(stream, target)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield target
        tg.cancel_scope.cancel()
