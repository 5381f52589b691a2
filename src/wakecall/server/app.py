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
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
from mcp import types
from mcp.server import MCPServer
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette

from wakecall import __version__
from wakecall.errors import InvalidInput
from wakecall.server.auth import current_owner
from wakecall.server.hosts import HostGuard, allowed_hosts
from wakecall.server.prompts import register_prompts, register_task_completions
from wakecall.server.push import OwnerBus, SessionRegistry
from wakecall.server.reach import attach_reach, bind_reach, new_reach
from wakecall.server.sdk_reaches import lowlevel_server
from wakecall.server.startup import loading_for_good
from wakecall.server.stdio import serve_stdio_connection
from wakecall.server.ui import apps_extension
from wakecall.settings import Settings

if TYPE_CHECKING:
    from wakecall.server.runtime import Runtime

__all__ = ["Prepare", "add_ui", "build_http_app", "build_server", "serve", "transport_security"]

#: Called once before the runtime starts (`wakecall serve --tasks-file` applies its file).
Prepare = Callable[[], Awaitable[None]]

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
    "wakecall.server.runtime",
    "wakecall.server.tools",
    "wakecall.store",
    "wakecall.store.urls",
)


def load_runtime_modules() -> None:
    """Import `RUNTIME_MODULES` (serving stdio, on a worker thread)."""
    with loading_for_good():
        for name in RUNTIME_MODULES:
            importlib.import_module(name)


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
            _declare_capabilities(result.setdefault("capabilities", {}), settings)
        elif ctx.method == "notifications/initialized":
            registry.register(ctx.session, owner())
            if wanted is not None:
                wanted.set()
        return result

    kwargs: dict[str, Any] = {}
    if token_owners or settings.oauth_issuer:
        # lazy: start-up time (JWT support loads only for a server that checks tokens)
        from wakecall.server.oauth import auth_kwargs

        kwargs = auth_kwargs(settings, token_owners)
    reach = new_reach(settings)
    mcp: MCPServer[Any] = MCPServer(
        "wakecall",
        title="wakecall",
        version=__version__,
        instructions=INSTRUCTIONS,
        subscriptions=bus,
        middleware=[middleware],
        extensions=[*reach.extensions, apps_extension()],
        **kwargs,
    )
    attach_reach(mcp, reach)

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

    register_prompts(mcp, owner)
    # MCPServer registers no handlers for these spec methods.
    lowlevel = lowlevel_server(mcp)
    lowlevel.add_request_handler("resources/subscribe", types.SubscribeRequestParams, on_subscribe)
    lowlevel.add_request_handler(
        "resources/unsubscribe", types.UnsubscribeRequestParams, on_unsubscribe
    )
    lowlevel.add_request_handler("logging/setLevel", types.SetLevelRequestParams, on_set_level)
    return mcp


def _declare_capabilities(caps: dict[str, Any], settings: Settings) -> None:
    """What the SDK does not declare by itself: Claude Code channels (unless turned off), and
    `listChanged` for tools, which hosts such as Gemini CLI look for."""
    if settings.channel:
        caps["experimental"] = {**(caps.get("experimental") or {}), "claude/channel": {}}
    if isinstance(caps.get("tools"), dict):
        caps["tools"]["listChanged"] = True


def add_runtime(mcp: MCPServer[Any], rt: Runtime) -> None:
    """Register the tools and resources, which work on `rt`, and complete task ids."""
    # lazy: start-up time (serving stdio, these load on a worker thread after the handshake)
    from wakecall.server.resources import register_resources
    from wakecall.server.tools import register_tools
    from wakecall.server.ui.view_tool import VIEW_TOOL, register_view

    register_view(mcp, rt)
    register_tools(mcp, rt, added=[VIEW_TOOL.name])
    register_resources(mcp, rt)
    register_task_completions(mcp, rt.owner, rt.tasks)
    bind_reach(mcp, rt)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """The Host and Origin checks of the SDK's transport (and of `/ui`): loopback, and
    `allowed_hosts` (see `hosts.allowed_hosts`)."""
    hosts, origins = allowed_hosts(settings)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


def build_http_app(mcp: MCPServer[Any], settings: Settings) -> Starlette:
    """The HTTP app of `mcp` at `/mcp`; every route of it (also those added later) answers only
    for the hosts and origins `allowed_hosts` names."""
    hosts, origins = allowed_hosts(settings)
    app = mcp.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=False,
        transport_security=transport_security(settings),
        session_idle_timeout=30 * 60,
    )
    app.add_middleware(HostGuard, hosts=hosts, origins=origins)
    return app


def add_ui(app: Starlette, rt: Runtime, *, tokens_required: bool) -> None:
    """The operators' page at `/ui` (see `wakecall.server.ui.routes`)."""
    # lazy: start-up time (see `serve`)
    from wakecall.server.ui.routes import ui_routes

    security = transport_security(rt.settings)
    app.router.routes.extend(ui_routes(rt, security, tokens_required=tokens_required))


async def serve(
    settings: Settings,
    *,
    stop: anyio.Event | None = None,
    ready: Any = None,
    on_failure: Callable[[Exception], object] | None = None,
    on_stopped: Callable[[], object] | None = None,
    prepare: Prepare | None = None,
) -> None:
    """Serve stdio, or HTTP when `settings.http`, until `stop` is set (or, over stdio, the
    client closes its input). When `stop` is set the server stops gracefully: open long polls
    are answered, the engine claims nothing more and gives the runs in flight
    `settings.shutdown_grace` to end (see `Engine.stop`), HTTP requests still open are
    answered (see `HttpServer.stop`). Serving stdio, `on_failure` and `on_stopped` are told when
    the runtime fails or has stopped while the client's input is open (see `serve_stdio`).
    `prepare` runs once before the runtime starts."""
    stop = stop or anyio.Event()
    token_owners = settings.token_owners() if settings.http else {}
    if (
        settings.http
        and not _is_loopback(settings.host)
        and not token_owners
        and not settings.oauth_issuer
    ):
        raise InvalidInput(
            f"refusing to serve HTTP on {settings.host} without bearer tokens: give "
            "--tokens-file (lines of 'TOKEN OWNER') or WAKECALL_TOKENS='TOKEN=OWNER,...', or "
            "--oauth-issuer, or bind 127.0.0.1"
        )
    if not settings.http:
        await serve_stdio(
            settings, stop=stop, on_failure=on_failure, on_stopped=on_stopped, prepare=prepare
        )
        return
    # lazy: start-up time (`wakecall serve` over stdio starts without these)
    from wakecall.server.http_server import HttpServer
    from wakecall.server.metrics import metrics_route
    from wakecall.server.runtime import open_runtime
    from wakecall.server.triggers import trigger_route

    await _before_start(settings, prepare)
    async with open_runtime(settings) as rt:
        mcp = build_server(rt, token_owners=token_owners or None)
        app = build_http_app(mcp, settings)
        if token_owners or settings.oauth_issuer:
            from wakecall.server.oauth import add_resource_metadata  # lazy: as above

            add_resource_metadata(app, settings)
        # With bearer tokens, /metrics wants one: an owner's shows its own series only.
        operators = (settings.metrics_token,) if settings.metrics_token else ()
        app.router.routes.append(
            metrics_route(rt.metrics, owners=token_owners, operators=operators)
        )
        app.router.routes.append(trigger_route(rt.tasks))
        add_ui(app, rt, tokens_required=bool(token_owners))
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        # IPPROTO_TCP given explicitly: asyncio sets TCP_NODELAY only on sockets that say so,
        # and without it Nagle's algorithm holds each small response back for ~40 ms.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((settings.host, settings.port))
        port = sock.getsockname()[1]
        print(
            f"wakecall: serving MCP on http://{settings.host}:{port}/mcp "
            f"({len(token_owners)} bearer token{'' if len(token_owners) == 1 else 's'})",
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


async def _before_start(settings: Settings, prepare: Prepare | None) -> None:
    """Name the store on stderr, then run `prepare`."""
    # lazy: start-up time (see `serve`)
    from wakecall.store.urls import redact

    print(f"wakecall {__version__}: store {redact(settings.store_path)}", file=sys.stderr)
    if prepare is not None:
        await prepare()


#: Serving stdio, how long the runtime waits for the client's handshake before starting anyway.
HANDSHAKE_GRACE = 1.0


async def serve_stdio(
    settings: Settings,
    *,
    stop: anyio.Event | None = None,
    on_failure: Callable[[Exception], object] | None = None,
    on_stopped: Callable[[], object] | None = None,
    prepare: Prepare | None = None,
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
            # lazy: start-up time (loaded by `load_runtime_modules` just above)
            from wakecall.server.runtime import open_runtime

            await _before_start(settings, prepare)
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
            await serve_stdio_connection(mcp)  # answers lines the SDK cannot parse, too
        finally:
            closed.set()
    if failed:
        raise failed[0]
