"""The MCP server: one runtime (store, engine, inbox, pushes) per process, served over stdio or
Streamable HTTP (stateful sessions, both protocol generations of `mcp` 2.x).

The engine is started once per process by `open_runtime`, outside the SDK's lifespan (which
runs once per connection over stdio and in memory): the server only borrows it.

Serving stdio, the server answers the handshake first and starts the runtime next (see
`serve_stdio`): most of wakecall (models, engine, store, actions) is imported by the functions
that need it, and no further request is answered before the tools are registered.
"""

from __future__ import annotations

import importlib
import ipaddress
import logging
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

import anyio
from mcp import types
from mcp.server import MCPServer
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import AnyHttpUrl, BaseModel
from starlette.applications import Starlette

from wakecall import __version__
from wakecall.clock import Clock, OffsetClock, SystemClock
from wakecall.errors import InvalidInput
from wakecall.server.auth import StaticTokenVerifier, current_owner
from wakecall.server.push import OwnerBus, SessionRegistry
from wakecall.server.startup import loading_for_good
from wakecall.settings import Settings

if TYPE_CHECKING:
    from wakecall.delivery import Inbox
    from wakecall.delivery.callbacks import CallbackDispatcher
    from wakecall.engine import Engine, EngineConfig
    from wakecall.models import ConditionSpec
    from wakecall.net import OutboundPolicy
    from wakecall.server.metrics import Metrics
    from wakecall.server.push import Pusher
    from wakecall.store import Store
    from wakecall.taskfile import ActionPolicy

__all__ = ["Runtime", "build_http_app", "build_server", "open_runtime", "serve"]

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "wakecall schedules work for you and tells you how it went. Create tasks (cron, intervals, "
    "one-shots, daily times; a time zone per task, UTC by default) whose runs call a webhook, "
    "run a command, or just wake you; or call schedule_wakeup to be woken later with a context "
    "you choose. Results arrive as events: read them with get_events (pass the cursor you last "
    "saw; `wait` long-polls), they are pushed to live sessions, and they are POSTed (signed) to "
    "a task's callback_url. Adapt a task with patch_schedule, pause, resume or delete."
)

#: What the runtime and the tools import (store, engine, actions, models and their schemas).
RUNTIME_MODULES = (
    "wakecall.actions",
    "wakecall.actions.command",
    "wakecall.actions.condition",
    "wakecall.actions.webhook",
    "wakecall.delivery",
    "wakecall.delivery.callbacks",
    "wakecall.engine",
    "wakecall.net",
    "wakecall.server.metrics",
    "wakecall.server.resources",
    "wakecall.server.tools",
    "wakecall.store",
    "wakecall.store.urls",
    "wakecall.taskfile",
)


def load_runtime_modules() -> None:
    """Import `RUNTIME_MODULES` (serving stdio, on a worker thread)."""
    with loading_for_good():
        for name in RUNTIME_MODULES:
            importlib.import_module(name)


@dataclass
class Runtime:
    """What the tools need, shared by every session of the process."""

    engine: Engine
    settings: Settings
    inbox: Inbox
    pusher: Pusher
    registry: SessionRegistry
    bus: OwnerBus
    callbacks: CallbackDispatcher
    outbound: OutboundPolicy
    metrics: Metrics

    def owner(self) -> str:
        return current_owner(self.settings.owner)

    @cached_property
    def policy(self) -> ActionPolicy:
        """The operator's limits on actions, callbacks and conditions, as the command line
        and task files apply them too."""
        from wakecall.actions.command import CommandPolicy
        from wakecall.taskfile import ActionPolicy

        return ActionPolicy(
            self.outbound,
            CommandPolicy(enabled=bool(self.settings.commands), allow=self.settings.commands),
        )

    def check_action(self, action: BaseModel) -> None:
        """Refuse, before anything is stored, an action this server cannot run."""
        kind = getattr(action, "type", None)
        if kind not in self.engine.executors:
            raise InvalidInput(
                f"this server cannot run {kind!r} actions; it runs: "
                f"{', '.join(sorted(self.engine.executors))}",
                field="action.type",
            )
        self.policy.check_action(action)

    def check_callback_url(self, url: str | None) -> None:
        self.policy.check_callback_url(url)

    def check_condition(self, condition: ConditionSpec | None) -> None:
        self.policy.check_condition(condition)

    async def issue_secret(self, task_id: str, *, rotate: bool) -> str:
        """A new signing secret for the task's callbacks (shown to the caller once). On a
        rotation the previous secrets keep signing for the configured grace period."""
        from wakecall.taskfile import issue_callback_secret

        return await issue_callback_secret(
            self.engine.tasks, task_id, rotate=rotate, grace=self.settings.secret_grace
        )


def store_clock(store: Store) -> Clock:
    """The clock of a server on `store`: the database server's for a store that measures its
    offset (PostgreSQL, shared by nodes whose clocks may differ), else this machine's."""
    if isinstance(getattr(store, "clock_offset", None), timedelta):
        return OffsetClock(lambda: store.clock_offset)  # type: ignore[attr-defined]
    return SystemClock()


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    store: Store | None = None,
    clock: Clock | None = None,
    config: EngineConfig | None = None,
    executors: dict[str, Any] | None = None,
    registry: SessionRegistry | None = None,
    bus: OwnerBus | None = None,
) -> AsyncIterator[Runtime]:
    """Open the store, start the engine and the push task; stop them all on exit. A server
    built before the runtime passes its session `registry` and subscription `bus`."""
    from wakecall.actions import default_executors
    from wakecall.actions.command import CommandExecutor, CommandPolicy
    from wakecall.actions.condition import ConditionChecker
    from wakecall.actions.webhook import WebhookExecutor
    from wakecall.delivery import Inbox
    from wakecall.delivery.callbacks import CallbackDispatcher
    from wakecall.engine import Engine
    from wakecall.net import OutboundPolicy, build_http_client
    from wakecall.server.metrics import Metrics
    from wakecall.server.push import Pusher
    from wakecall.store import open_store

    own_store = store is None
    if store is None:
        store = open_store(
            settings.store_path, pg_schema=settings.pg_schema, pg_pool=settings.pg_pool
        )
    outbound = OutboundPolicy.parse_allow(settings.allow_outbound)
    await store.open()
    try:
        async with build_http_client(outbound) as client:
            if executors is None:
                executors = {
                    **default_executors(),
                    "webhook": WebhookExecutor(client),
                    "command": CommandExecutor(
                        CommandPolicy(enabled=bool(settings.commands), allow=settings.commands)
                    ),
                }
            if clock is None:
                clock = store_clock(store)
            async with Engine(
                store,
                clock=clock,
                config=config or settings.engine_config(),
                executors=executors,
                conditions=ConditionChecker(client),
            ) as engine:
                if registry is None:
                    registry = SessionRegistry()
                if bus is None:
                    bus = OwnerBus(lambda: current_owner(settings.owner))
                pusher = Pusher(
                    bus,
                    registry,
                    store,
                    channel=settings.channel,
                    poll_interval=engine.config.poll_interval.total_seconds(),
                )
                callbacks = CallbackDispatcher(
                    store,
                    client,
                    clock=engine.clock,
                    node=engine.node,
                    # Long enough for one attempt (10 s at most) and for recording it; if the
                    # node dies, another resends after this (same webhook-id).
                    lease=max(settings.lease, timedelta(seconds=20)),
                    max_attempts=settings.callback_attempts,
                    poll_interval=engine.config.poll_interval,
                )
                engine.add_listener(pusher.on_events)
                engine.add_listener(callbacks.on_events)
                engine.add_hint_listener(pusher.on_hint)
                engine.add_hint_listener(callbacks.on_hint)
                metrics = Metrics()
                metrics.attach(engine, callbacks)
                pusher.on_pushed = metrics.on_push
                registry.on_registered = pusher.on_registered
                rt = Runtime(
                    engine,
                    settings,
                    Inbox(engine),
                    pusher,
                    registry,
                    bus,
                    callbacks,
                    outbound,
                    metrics,
                )
                async with anyio.create_task_group() as tg:
                    tg.start_soon(pusher.run, name="wakecall-push")
                    tg.start_soon(callbacks.run, name="wakecall-callbacks")
                    try:
                        yield rt
                    finally:
                        engine.remove_listener(pusher.on_events)
                        engine.remove_listener(callbacks.on_events)
                        engine.remove_hint_listener(pusher.on_hint)
                        engine.remove_hint_listener(callbacks.on_hint)
                        registry.on_registered = None
                        metrics.detach(engine, callbacks)
                        pusher.close()
                        tg.cancel_scope.cancel()
    finally:
        if own_store:
            await store.close()


def build_server(rt: Runtime, *, token_owners: dict[str, str] | None = None) -> MCPServer[Any]:
    """The MCP surface over `rt`. With `token_owners`, HTTP requests need a bearer token."""
    mcp = new_server(rt.settings, rt.registry, rt.bus, token_owners=token_owners)
    add_runtime(mcp, rt)
    return mcp


#: Answered before the runtime has started (as are notifications): the handshake and ping, whose
#: answers depend on nothing the runtime adds.
_ANSWERED_BEFORE_START = frozenset({"initialize", "ping", "server/discover"})


def new_server(
    settings: Settings,
    registry: SessionRegistry,
    bus: OwnerBus,
    *,
    token_owners: dict[str, str] | None = None,
    started: anyio.Event | None = None,
    wanted: anyio.Event | None = None,
) -> MCPServer[Any]:
    """The MCP server without its tools and resources (`add_runtime` adds them). With
    `started`, requests other than the handshake wait until it is set; `wanted` is set when
    the handshake is complete or a request waits."""

    def owner() -> str:
        return current_owner(settings.owner)

    async def middleware(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if (
            started is not None
            and not started.is_set()
            and ctx.method not in _ANSWERED_BEFORE_START
            and not ctx.method.startswith("notifications/")
        ):
            if wanted is not None:
                wanted.set()
            await started.wait()
        result = await call_next(ctx)
        if ctx.method in ("initialize", "server/discover") and isinstance(result, dict):
            if settings.channel:
                caps = result.setdefault("capabilities", {})
                caps["experimental"] = {**(caps.get("experimental") or {}), "claude/channel": {}}
        elif ctx.method == "notifications/initialized":
            registry.register(ctx.session, owner())
            if wanted is not None:
                wanted.set()
        return result

    kwargs: dict[str, Any] = {}
    if token_owners:
        kwargs["token_verifier"] = StaticTokenVerifier(token_owners)
        kwargs["auth"] = AuthSettings(
            issuer_url=AnyHttpUrl("https://wakecall.invalid"), resource_server_url=None
        )
    mcp: MCPServer[Any] = MCPServer(
        "wakecall",
        title="wakecall",
        version=__version__,
        instructions=INSTRUCTIONS,
        subscriptions=bus,
        middleware=[middleware],
        **kwargs,
    )

    async def on_subscribe(
        ctx: ServerRequestContext[Any, Any], params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        live = registry.lookup(ctx.session) or registry.register(ctx.session, owner())
        live.subscriptions.add(str(params.uri))
        return types.EmptyResult()

    async def on_unsubscribe(
        ctx: ServerRequestContext[Any, Any], params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        live = registry.lookup(ctx.session)
        if live is not None:
            live.subscriptions.discard(str(params.uri))
        return types.EmptyResult()

    async def on_set_level(
        ctx: ServerRequestContext[Any, Any], params: types.SetLevelRequestParams
    ) -> types.EmptyResult:
        live = registry.lookup(ctx.session) or registry.register(ctx.session, owner())
        live.log_level = params.level
        return types.EmptyResult()

    # MCPServer registers no handlers for these; the low-level server has no public accessor.
    lowlevel = mcp._lowlevel_server
    lowlevel.add_request_handler("resources/subscribe", types.SubscribeRequestParams, on_subscribe)
    lowlevel.add_request_handler(
        "resources/unsubscribe", types.UnsubscribeRequestParams, on_unsubscribe
    )
    lowlevel.add_request_handler("logging/setLevel", types.SetLevelRequestParams, on_set_level)
    return mcp


def add_runtime(mcp: MCPServer[Any], rt: Runtime) -> None:
    """Register the tools and resources, which work on `rt`."""
    from wakecall.server.resources import register_resources
    from wakecall.server.tools import register_tools

    register_tools(mcp, rt)
    register_resources(mcp, rt)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_http_app(mcp: MCPServer[Any], settings: Settings) -> Starlette:
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"]
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    for host in settings.allowed_hosts:
        hosts += [host, f"{host}:*"] if ":" not in host else [host]
        origins += [f"https://{host}", f"http://{host}"]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )
    return mcp.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=False,
        transport_security=security,
        session_idle_timeout=30 * 60,
    )


async def apply_tasks_file(settings: Settings) -> None:
    """Apply `--tasks-file` to the owner's tasks before the scheduler starts (a bad file stops
    the start, nothing applied); what changed goes to stderr, with the signing secret of each
    new callback (shown once)."""
    from wakecall.engine import Engine
    from wakecall.store import open_store
    from wakecall.taskfile import ActionPolicy, apply_file

    assert settings.tasks_file is not None
    store = open_store(settings.store_path, pg_schema=settings.pg_schema, pg_pool=settings.pg_pool)
    await store.open()
    try:
        engine = Engine(store, clock=store_clock(store), config=settings.engine_config())
        report = await apply_file(
            engine.tasks,
            settings.owner,
            settings.tasks_file,
            check=ActionPolicy.from_settings(settings).check_spec,
        )
    finally:
        await store.close()
    for line in report.lines():
        print(f"wakecall: {settings.tasks_file}: {line}", file=sys.stderr, flush=True)


async def serve(
    settings: Settings,
    *,
    stop: anyio.Event | None = None,
    ready: Any = None,
    on_failure: Callable[[Exception], object] | None = None,
    on_stopped: Callable[[], object] | None = None,
) -> None:
    """Serve stdio, or HTTP when `settings.http`, until `stop` is set (or, over stdio, the
    client closes its input). When `stop` is set the server stops gracefully: open long polls
    are answered, the engine claims nothing more and gives the runs in flight
    `settings.shutdown_grace` to end (see `Engine.stop`), HTTP requests still open are
    answered (see `HttpServer.stop`). Serving stdio, `on_failure` and `on_stopped` are told when
    the runtime fails or has stopped while the client's input is open (see `serve_stdio`)."""
    stop = stop or anyio.Event()
    token_owners = settings.token_owners() if settings.http else {}
    if settings.http and not _is_loopback(settings.host) and not token_owners:
        raise InvalidInput(
            f"refusing to serve HTTP on {settings.host} without bearer tokens: give "
            "--tokens-file (lines of 'TOKEN OWNER') or WAKECALL_TOKENS='TOKEN=OWNER,...', or "
            "bind 127.0.0.1"
        )
    if not settings.http:
        await serve_stdio(settings, stop=stop, on_failure=on_failure, on_stopped=on_stopped)
        return
    # Loaded here, for HTTP only: serving stdio starts without uvicorn.
    from wakecall.server.http_server import HttpServer
    from wakecall.server.metrics import metrics_route
    from wakecall.server.triggers import trigger_route

    await _before_start(settings)
    async with open_runtime(settings) as rt:
        mcp = build_server(rt, token_owners=token_owners or None)
        app = build_http_app(mcp, settings)
        # Task ids of every owner are labels: with bearer tokens, /metrics wants one too.
        app.router.routes.append(metrics_route(rt.metrics, tokens=set(token_owners) or None))
        app.router.routes.append(trigger_route(rt.engine.tasks))
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        # IPPROTO_TCP given explicitly: asyncio sets TCP_NODELAY only on sockets that say so,
        # and without it Nagle's algorithm holds each small response back for ~40 ms.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((settings.host, settings.port))
        port = sock.getsockname()[1]
        print(
            f"wakecall: serving MCP on http://{settings.host}:{port}/mcp "
            f"({len(token_owners)} bearer tokens)",
            file=sys.stderr,
            flush=True,
        )
        server = HttpServer(app, log_level="warning", lifespan="on", access_log=False)

        async def stop_serving() -> None:
            await stop.wait()
            async with anyio.create_task_group() as stopping:
                stopping.start_soon(_stop_runtime, rt)  # long polls are answered at once
                stopping.start_soon(server.stop)

        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_serving, name="wakecall-stop")
            await server.serve(sockets=[sock])
            if not stop.is_set():
                tg.cancel_scope.cancel()


async def _stop_runtime(rt: Runtime) -> None:
    """Answer the open long polls, then stop the engine within the grace period (the runtime's
    exit waits for it)."""
    rt.inbox.stop_waiting()
    await rt.engine.stop(rt.settings.shutdown_grace.total_seconds())


async def _until_either(first: anyio.Event, second: anyio.Event) -> None:
    async with anyio.create_task_group() as tg:

        async def wait(event: anyio.Event) -> None:
            await event.wait()
            tg.cancel_scope.cancel()

        tg.start_soon(wait, first)
        tg.start_soon(wait, second)


async def _before_start(settings: Settings) -> None:
    """Name the store on stderr, then apply `--tasks-file`."""
    from wakecall.store.urls import redact

    print(f"wakecall {__version__}: store {redact(settings.store_path)}", file=sys.stderr)
    if settings.tasks_file:
        await apply_tasks_file(settings)


#: Serving stdio, how long the runtime waits for the client's handshake before starting anyway.
HANDSHAKE_GRACE = 1.0


async def serve_stdio(
    settings: Settings,
    *,
    stop: anyio.Event | None = None,
    on_failure: Callable[[Exception], object] | None = None,
    on_stopped: Callable[[], object] | None = None,
) -> None:
    """Serve the process's stdio connection until the client closes it or `stop` is set (then
    the runtime stops gracefully, as `serve` says).

    The server answers the handshake first; then the runtime starts (its modules load on a
    worker thread, the store opens, the engine starts), as soon as the client has completed the
    handshake or sent another request, or `HANDSHAKE_GRACE` seconds after serving began.
    Requests other than the handshake wait until it has started.

    If the runtime fails (it cannot start, say), serving stops and its error is raised. The
    SDK's transport reads the client's input on a worker thread that cannot be stopped, so while
    that input is open this waits for the client to close it, unless `on_failure` (told of the
    failure) or `on_stopped` (told once the runtime has stopped on `stop`) ends the process, as
    `wakecall serve` does."""
    registry = SessionRegistry()
    bus = OwnerBus(lambda: current_owner(settings.owner))
    started, wanted, closed = anyio.Event(), anyio.Event(), anyio.Event()
    stop = stop or anyio.Event()
    mcp = new_server(settings, registry, bus, started=started, wanted=wanted)
    failed: list[Exception] = []

    async def run_runtime() -> None:
        try:
            with anyio.move_on_after(HANDSHAKE_GRACE):
                await wanted.wait()
            await anyio.to_thread.run_sync(load_runtime_modules)
            await _before_start(settings)
            async with open_runtime(settings, registry=registry, bus=bus) as rt:
                with loading_for_good():  # the tools' schemas and validators
                    add_runtime(mcp, rt)
                started.set()
                await _until_either(closed, stop)
                if not closed.is_set():
                    await _stop_runtime(rt)
        except Exception as exc:  # raised below, as `serve` would without the task group
            if on_failure is not None and not closed.is_set():
                on_failure(exc)
            failed.append(exc)
            tg.cancel_scope.cancel()
            return
        if not closed.is_set():  # stopped on `stop`, the client's input still open
            if on_stopped is not None:
                on_stopped()
            tg.cancel_scope.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_runtime, name="wakecall-runtime")
        try:
            await mcp.run_stdio_async()
        finally:
            closed.set()
    if failed:
        raise failed[0]
