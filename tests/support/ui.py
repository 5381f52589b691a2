"""Shared by the task view's tests: wakecall's HTTP app (MCP at /mcp, the page at /ui) served
in this process on loopback, over a runtime on a fake clock, with bearer tokens for two owners;
tasks, runs and callbacks to look at; and headless Chromium from the system, driven by
Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import uvicorn
from mcp import Client
from mcp.client.extension import advertise
from mcp.client.streamable_http import streamable_http_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wakecall.actions import default_executors
from wakecall.actions.base import ActionContext, ActionFailed
from wakecall.engine import EngineConfig
from wakecall.server import Runtime, build_http_app, build_server, open_runtime
from wakecall.server.app import add_ui
from wakecall.settings import Settings
from wakecall.testing import FakeClock, advance_to, run_until_idle, step_to

TOKENS = {"tok-alice": "alice", "tok-bob": "bob"}
CONFIG = EngineConfig(node_id="n1", poll_interval=timedelta(hours=1), prune_every=timedelta(days=1))
#: A Monday, half past midnight UTC: the view's "now" in every test.
START = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)
CHROMIUM = Path("/usr/bin/chromium")
#: What the project's CI sets: the browser tests must run, never skip.
BROWSER_REQUIRED = os.environ.get("WAKECALL_REQUIRE_BROWSER") == "1"
#: Where the screenshots go when set (the README's are made with `docs/screenshots`).
SCREENSHOTS = os.environ.get("WAKECALL_SCREENSHOTS")
#: Chromium as this machine runs it: no sandbox (root), no GPU, no calls to the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
APPS = advertise("io.modelcontextprotocol/ui", {"mimeTypes": ["text/html;profile=mcp-app"]})


class TimedWebhooks:
    """The `webhook` executor of these tests: each attempt takes the (fake-clock) time its
    task's script says and succeeds or fails as scripted, so that runs have durations and
    retries to show. Scripts are per task name: ("ok" | an error, seconds)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.scripts: dict[str, list[tuple[str, float]]] = {}

    async def execute(self, ctx: ActionContext) -> object:
        steps = self.scripts.get(ctx.task.name) or []
        outcome, seconds = steps.pop(0) if steps else ("ok", 0.2)
        self.clock.advance(seconds)
        if outcome != "ok":
            raise ActionFailed(outcome)
        return {"status": 200}


@dataclass
class Receiver:
    """Callbacks land here: `/down` answers 503 (retried later), `/gone` 410 (dead-lettered)."""

    port: int = 0
    hits: list[str] = field(default_factory=list)
    changed: anyio.Event = field(default_factory=anyio.Event)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def wait_for_hits(self, path: str, count: int) -> None:
        """Until `path` was asked `count` times (bounded by the caller)."""
        while self.hits.count(path) < count:
            await self.changed.wait()

    async def answer(self, request: Request) -> Response:
        self.hits.append(request.url.path)
        self.changed.set()
        self.changed = anyio.Event()
        status = 410 if request.url.path == "/gone" else 503
        return JSONResponse({"error": "not now"}, status_code=status)


@asynccontextmanager
async def serve_app(app: Any, *, lifespan: str = "on") -> AsyncIterator[tuple[uvicorn.Server, int]]:
    """`app` on a free loopback port until exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan=lifespan, timeout_graceful_shutdown=2)
    )
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            with anyio.fail_after(10):
                while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
                    await anyio.sleep(0.01)
            try:
                yield server, port
            finally:
                server.should_exit = True
    finally:
        sock.close()


@dataclass
class Served:
    """wakecall's HTTP app in this process: `url` is `http://127.0.0.1:PORT`."""

    rt: Runtime
    clock: FakeClock
    url: str
    webhooks: TimedWebhooks
    receiver: Receiver

    def headers(self, owner: str) -> dict[str, str]:
        token = next(t for t, o in TOKENS.items() if o == owner)
        return {"Authorization": f"Bearer {token}"}

    @asynccontextmanager
    async def client(self, owner: str, *, apps: bool = True) -> AsyncIterator[Client]:
        """The SDK's client over Streamable HTTP as `owner`, declaring MCP Apps."""
        timeout = httpx2.Timeout(10, read=60)
        async with httpx2.AsyncClient(headers=self.headers(owner), timeout=timeout) as http:
            transport = streamable_http_client(f"{self.url}/mcp", http_client=http)
            async with Client(transport, extensions=[APPS] if apps else []) as client:
                yield client

    async def settle(self) -> None:
        """Let the engine and the callback queue finish what is due now."""
        with anyio.fail_after(10):
            await run_until_idle(self.rt.engine)
            await self.rt.callbacks.wait_idle()

    async def step_to(self, instant: datetime) -> None:
        """Move the clock as time passes, letting the engine act at each deadline."""
        with anyio.fail_after(20):
            await step_to(self.rt.engine, self.clock, instant)
            await self.rt.callbacks.wait_idle()


@asynccontextmanager
async def serve_wakecall(tmp_path: Path) -> AsyncIterator[Served]:
    """wakecall's HTTP app as `wakecall serve --http` builds it (bearer tokens for alice and
    bob), on a fake clock at `START`, with a callback receiver beside it."""
    receiver = Receiver()
    receiving = Starlette(routes=[Route("/{name}", receiver.answer, methods=["POST"])])
    clock = FakeClock(START)
    webhooks = TimedWebhooks(clock)
    settings = Settings(
        store=str(tmp_path / "w.db"),
        allow_outbound=("loopback",),
        http=True,
        callback_attempts=8,
    )
    executors = {**default_executors(), "webhook": webhooks}
    async with (
        serve_app(receiving, lifespan="off") as (_, receiver.port),
        open_runtime(settings, clock=clock, config=CONFIG, executors=executors) as rt,
    ):
        mcp = build_server(rt, token_owners=TOKENS)
        app = build_http_app(mcp, settings)
        add_ui(app, rt, tokens_required=True)
        async with serve_app(app) as (_, port):
            try:
                yield Served(rt, clock, f"http://127.0.0.1:{port}", webhooks, receiver)
            finally:
                rt.inbox.stop_waiting()  # ends the event streams of open pages


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool call that must succeed; its structured answer."""
    with anyio.fail_after(10):
        result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None, tool
    return result.structured_content


@dataclass
class Seeded:
    """The ids of what `seed` made."""

    tasks: dict[str, str]
    bobs: str


async def seed(served: Served) -> Seeded:
    """Alice's tasks with some history (successes, a failure, a retry, a late catch-up run, a
    paused task, a wakeup, a callback being retried and one dead-lettered), and one of Bob's."""
    hook = {"type": "webhook", "url": served.receiver.url("/work")}
    served.webhooks.scripts.update(
        {
            "nightly report": [("HTTP 502 from the report service", 3.1), ("ok", 38.2)],
            "sync invoices": [("ok", 1.2), ("ok", 0.9), ("timeout talking to the ledger", 12.0)],
        }
    )
    async with served.client("alice") as alice, served.client("bob") as bob:
        made = {}
        for name, args in [
            (
                "nightly report",
                {
                    "schedule": "0 2 * * *",
                    "timezone": "Europe/Paris",
                    "action": hook,
                    "retry": {"attempts": 3, "backoff": "none", "delay": "30s", "jitter": False},
                    "callback_url": served.receiver.url("/down"),
                },
            ),
            (
                "sync invoices",
                {"schedule": "@every 15m", "timezone": "UTC", "action": hook},
            ),
            (
                "standup reminder",
                {"schedule": "0 9 * * MON-FRI", "timezone": "America/New_York"},
            ),
            (
                "weekly digest",
                {
                    "schedule": "0 8 * * MON",
                    "timezone": "Asia/Tokyo",
                    "callback_url": served.receiver.url("/gone"),
                },
            ),
        ]:
            made[name] = (await call(alice, "create_task", name=name, **args))["id"]
        await call(alice, "pause", task_id=made["standup reminder"], note="team offsite this week")
        wake = await call(alice, "schedule_wakeup", **{"in": "6h", "reason": "check the deploy"})
        made["check the deploy"] = wake["wakeup_id"]
        bobs = (await call(bob, "create_task", name="bob's backup", schedule="@hourly"))["id"]
        # The weekly digest runs now: its callback is refused for good (410).
        await call(alice, "run_now", task_id=made["weekly digest"])
        await served.settle()
        # Time passes: the syncs run every quarter hour, the nightly report fails once at
        # 02:00 Paris and succeeds on its retry.
        await served.step_to(START + timedelta(minutes=46))
    # The server was down for 50 minutes: the sync catches up, late.
    await advance_to(served.rt.engine, served.clock, served.clock.now() + timedelta(minutes=50))
    await served.settle()
    return Seeded(made, bobs)


# --- the browser ---------------------------------------------------------------------------
def chromium_or_skip() -> Any:
    """Playwright's async API, once the system's Chromium is known to be there; a skip
    otherwise (a failure where the project's CI requires the browser tests)."""
    problem = None
    if not CHROMIUM.exists():
        problem = f"no {CHROMIUM}: install Debian's chromium (apt-get install chromium)"
    try:
        # lazy: the browser tests skip (or fail, in CI) without it, the others run
        from playwright.async_api import async_playwright
    except ImportError:
        problem = problem or "the playwright package is not installed (the test extras)"
        async_playwright = None
    if problem:
        _missing_or_skip(problem)
    return async_playwright


@asynccontextmanager
async def browser() -> AsyncIterator[Any]:
    """Headless Chromium from the system (`/usr/bin/chromium`), with a fresh profile."""
    async_playwright = chromium_or_skip()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


async def new_page(launched: Any, *, width: int = 1280, height: int = 800) -> Any:
    """A page in a new context: viewer in New York, English, no service workers."""
    context = await launched.new_context(
        viewport={"width": width, "height": height},
        timezone_id="America/New_York",
        locale="en-US",
        service_workers="block",
    )
    return await context.new_page()


def screenshot_path(tmp_path: Path, name: str) -> Path:
    """Where a screenshot goes: `WAKECALL_SCREENSHOTS` when set, else the test's directory."""
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.png"


#: The test host's npm project (installed by `npm ci` there: `.ci/run` and `scripts/test` do).
HOST_DIR = Path(__file__).resolve().parents[1] / "server" / "ui" / "host"


def _missing_or_skip(problem: str) -> None:
    if BROWSER_REQUIRED:
        pytest.fail(f"WAKECALL_REQUIRE_BROWSER=1 but {problem}")
    pytest.skip(problem)


def build_host(folder: Path) -> Path:
    """Bundle the test host (`host.js` with the host side of @modelcontextprotocol/ext-apps)
    for the browser into `folder`, beside `host.html`; the folder to serve."""
    esbuild = HOST_DIR / "node_modules" / ".bin" / "esbuild"
    if shutil.which("node") is None or not esbuild.exists():
        _missing_or_skip(f"the test host is not installed: npm ci --prefix {HOST_DIR}")
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            str(esbuild),
            str(HOST_DIR / "host.js"),
            "--bundle",
            "--format=esm",
            "--platform=browser",
            "--log-level=warning",
            f"--outfile={folder / 'host.bundle.js'}",
        ],
        check=True,
        timeout=60,
    )
    shutil.copy(HOST_DIR / "host.html", folder / "host.html")
    return folder


@asynccontextmanager
async def serve_folder(folder: Path) -> AsyncIterator[str]:
    """The files of `folder` on a loopback port of their own (another origin than wakecall's)."""

    async def file(request: Request) -> Response:
        name = request.path_params["name"]
        path = folder / name
        if "/" in name or not path.is_file():
            return Response("not found", status_code=404)
        kind = "text/javascript" if name.endswith(".js") else "text/html"
        return Response(path.read_bytes(), media_type=kind)

    async with serve_app(Starlette(routes=[Route("/{name}", file)]), lifespan="off") as (_, port):
        yield f"http://127.0.0.1:{port}"


#: Run in the page: every visible text whose contrast with its background is under WCAG AA
#: (4.5:1, or 3:1 for large text), as [text, ratio, colour, background].
LOW_CONTRAST_JS = """
() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const lum = ({ r, g, b }) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const over = (top, under) => ({
    r: top.r * top.a + under.r * (1 - top.a),
    g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a), a: 1,
  });
  const background = (node) => {
    const layers = [];
    for (let n = node; n && n.nodeType === 1; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let colour = { r: 255, g: 255, b: 255, a: 1 };
    if (layers.length && layers[layers.length - 1].a >= 1) colour = layers.pop();
    while (layers.length) colour = over(layers.pop(), colour);
    return colour;
  };
  const hidden = (node) => {
    for (let n = node; n && n.nodeType === 1; n = n.parentElement) {
      const s = getComputedStyle(n);
      if (s.visibility === "hidden" || s.display === "none" || Number(s.opacity) === 0) return true;
    }
    return !node.getClientRects().length;
  };
  const low = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {
    const node = t.parentElement;
    if (!t.textContent.trim() || !node || hidden(node) || node.closest(".sr-only")) continue;
    const style = getComputedStyle(node);
    const fg = parse(style.color);
    const bg = background(node);
    const shown = fg.a < 1 ? over(fg, bg) : fg;
    const [hi, lo] = [lum(shown), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      low.push([t.textContent.trim(), ratio.toFixed(2), style.color, JSON.stringify(bg)]);
    }
  }
  return low;
}
"""

#: Run in the page: true when nothing is wider than the window (no sideways scrolling).
FITS_JS = "() => document.documentElement.scrollWidth <= window.innerWidth"
