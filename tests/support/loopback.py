"""Shared by the delivery tests: a webhook receiver on loopback and an agent driving wakecall
through the in-memory MCP client with a fake clock."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import uvicorn
from mcp import Client
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wakecall.engine import EngineConfig
from wakecall.server import Runtime, build_server, open_runtime
from wakecall.settings import Settings
from wakecall.testing import FakeClock, run_until_idle, step_to

CONFIG = EngineConfig(node_id="n1", poll_interval=timedelta(hours=1), prune_every=timedelta(days=1))


@dataclass
class Receiver:
    """Loopback endpoints.

    `/hook` and `/slow` take signed callbacks: each attempt's headers (and the port it came
    from, in `peers`) are kept, `script` gives the statuses to answer first (with `headers` per
    status), then signatures are verified with `secrets` and each run id is stored once. `/slow`
    holds every request until `slow_gate`.
    `/flaky` and `/progress` answer task actions from `replies`, a script of (status, JSON body)
    per path whose last entry repeats.
    """

    port: int = 0
    secrets: list[str] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    headers: dict[int, dict[str, str]] = field(default_factory=dict)
    attempts: list[dict[str, str]] = field(default_factory=list)
    peers: list[int] = field(default_factory=list)  # each attempt's client port (connection)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    stored_runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    slow_gate: anyio.Event = field(default_factory=anyio.Event)
    replies: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    changed: anyio.Event = field(default_factory=anyio.Event)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def hook(self, request: Request) -> Response:
        raw = await request.body()
        self.attempts.append(dict(request.headers))
        self.peers.append(request.client.port if request.client else 0)
        self._notify()
        if request.url.path == "/slow":
            await self.slow_gate.wait()
        status = self.script.pop(0) if self.script else 200
        if status != 200:
            return Response(status_code=status, headers=self.headers.get(status, {}))
        verified = None
        for secret in self.secrets:
            try:
                verified = Webhook(secret).verify(raw, dict(request.headers))
                break
            except WebhookVerificationError:
                continue
        if verified is None:
            self._notify()
            return JSONResponse({"error": "bad signature"}, status_code=401)
        self.bodies.append(verified)
        run = verified.get("run") or {}
        if run.get("id"):
            self.stored_runs.setdefault(run["id"], verified)
        self._notify()
        return JSONResponse({"ok": True})

    async def scripted(self, request: Request) -> Response:
        path = request.url.path
        self.calls[path] = self.calls.get(path, 0) + 1
        script = self.replies.get(path, [])
        status, body = script.pop(0) if len(script) > 1 else script[0]
        self._notify()
        return JSONResponse(body, status_code=status)

    def _notify(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    async def wait_for(self, predicate: Callable[[], object]) -> None:
        while not predicate():
            await self.changed.wait()


@asynccontextmanager
async def serve_receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = Starlette(
        routes=[
            Route("/hook", rec.hook, methods=["POST"]),
            Route("/slow", rec.hook, methods=["POST"]),
            Route("/flaky", rec.scripted, methods=["POST", "GET"]),
            Route("/progress", rec.scripted, methods=["POST", "GET"]),
        ]
    )
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
        rec.slow_gate.set()  # uvicorn waits for a held request before it stops
        server.should_exit = True
    sock.close()


@dataclass
class Loop:
    """An agent: calls tools, reads its events from its own cursor, moves the fake clock."""

    rt: Runtime
    client: Client
    clock: FakeClock
    cursor: int = 0

    async def call(self, tool: str, **args: Any) -> dict[str, Any]:
        result = await self.client.call_tool(tool, args)
        assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
        assert result.structured_content is not None
        return result.structured_content

    async def settle(self) -> None:
        await run_until_idle(self.rt.engine)
        await self.rt.callbacks.wait_idle()

    async def step(self, delta: timedelta) -> None:
        """Move the clock, and wait until the engine and the callback queue are both idle."""
        with anyio.fail_after(10):
            await self.step_engine(delta)
            await self.rt.callbacks.wait_idle()

    async def step_engine(self, delta: timedelta) -> None:
        """Move the clock and let the engine act; callbacks may still be in flight."""
        with anyio.fail_after(10):
            await step_to(self.rt.engine, self.clock, self.clock.now() + delta)
            await run_until_idle(self.rt.engine)

    async def new_events(self) -> list[dict[str, Any]]:
        """What the agent has not read yet, as it would read it."""
        page = await self.call("get_events", after=self.cursor)
        self.cursor = page["cursor"]
        return page["events"]


def real_time_clock() -> FakeClock:
    """Receivers check `webhook-timestamp` against their own clock (5 minutes of tolerance), so
    the fake clock starts at the real time."""
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


def loop_settings(tmp_path: Path) -> Settings:
    return Settings(store=str(tmp_path / "w.db"), allow_outbound=("loopback",))


@asynccontextmanager
async def open_loop(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Loop]:
    """A runtime on `tmp_path`'s store and an in-memory client; reopening it is a restart."""
    async with open_runtime(loop_settings(tmp_path), clock=clock, config=CONFIG) as rt:
        async with Client(build_server(rt)) as client:
            yield Loop(rt, client, clock)
