"""What the server adds to reach every host, beyond its tools: read positions by client
identity, the MCP Events extension and the MCP Tasks extension.

`Reach` is made with the server (its extensions must be given to `MCPServer`) and bound to
the runtime once that has started (`bind_reach`, from `add_runtime`): over stdio the server
answers the handshake before the runtime exists (and before most of wakecall is loaded), and
no other request is answered before. What answers the extensions' requests is made then.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from mcp.server import MCPServer
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension

from wakecall.server.events import EventsExtension
from wakecall.server.readers import client_identity
from wakecall.server.sdk_reaches import lowlevel_server
from wakecall.server.task_notifications import TaskListen
from wakecall.server.tasks_ext import TasksExtension

if TYPE_CHECKING:
    from wakecall.server.events.service import EventsService
    from wakecall.server.events.webhooks import WebhookService
    from wakecall.server.runtime import Runtime
    from wakecall.server.tool_tasks import ToolTasks
    from wakecall.settings import Settings

__all__ = ["Reach", "RuntimeSlot", "attach_reach", "bind_reach", "new_reach"]


class RuntimeSlot:
    """The runtime and what answers the extensions, once the runtime has started (their
    handlers run only after)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._rt: Runtime | None = None
        self._events: EventsService | None = None
        self._webhooks: WebhookService | None = None
        self._tool_tasks: ToolTasks | None = None
        self.reading_as: Callable[[str], AbstractContextManager[None]] | None = None

    def bind(self, rt: Runtime) -> None:
        # lazy: start-up time (loaded with the runtime, after the handshake)
        from wakecall.delivery.inbox import reading_as
        from wakecall.server.events.service import EventsService
        from wakecall.server.events.webhooks import WebhookService
        from wakecall.server.tool_tasks import ToolTasks

        heartbeat = min(max(self.settings.events_heartbeat.total_seconds(), 0.05), 30.0)
        self._events = EventsService(rt, heartbeat_s=heartbeat)
        self._webhooks = WebhookService(rt)
        self._tool_tasks = ToolTasks(rt)
        self.reading_as = reading_as
        self._rt = rt

    @property
    def rt(self) -> Runtime:
        if self._rt is None:
            raise RuntimeError("the runtime has not started")
        return self._rt

    @property
    def events(self) -> EventsService:
        if self._events is None:
            raise RuntimeError("the runtime has not started")
        return self._events

    @property
    def webhooks(self) -> WebhookService:
        if self._webhooks is None:
            raise RuntimeError("the runtime has not started")
        return self._webhooks

    @property
    def tool_tasks(self) -> ToolTasks:
        if self._tool_tasks is None:
            raise RuntimeError("the runtime has not started")
        return self._tool_tasks


class Reach:
    """The extensions of one server and the middleware that names each request's reader."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.slot = RuntimeSlot(settings)
        self.events = EventsExtension(lambda: self.slot.events, lambda: self.slot.webhooks)
        self.tasks = TasksExtension(lambda: self.slot.tool_tasks)
        self.extensions: list[Extension] = [self.events, self.tasks]

    async def middleware(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        reading_as = self.slot.reading_as
        if reading_as is None:  # the handshake, before the runtime
            result = await call_next(ctx)
        else:
            with reading_as(client_identity(ctx)):
                result = await call_next(ctx)
        if ctx.method == "tools/call" and reading_as is not None:
            result = await self.slot.tool_tasks.answer(ctx, result)
        if ctx.method in ("initialize", "server/discover") and isinstance(result, dict):
            # The Events sketch's capability sits beside the spec's own, not under extensions;
            # the handshake generation's answer has no extensions unless named here.
            capabilities = result.setdefault("capabilities", {})
            capabilities["events"] = {"listChanged": False}
            extensions = capabilities.setdefault("extensions", {})
            for extension in self.extensions:
                extensions.setdefault(extension.identifier, extension.settings())
        return result


_REACHES: weakref.WeakKeyDictionary[MCPServer[Any], Reach] = weakref.WeakKeyDictionary()


def new_reach(settings: Settings) -> Reach:
    """The reach of a server about to be made: give `reach.extensions` to `MCPServer`, then
    `attach_reach` it."""
    return Reach(settings)


def attach_reach(mcp: MCPServer[Any], reach: Reach) -> None:
    """Install `reach` on the server made with its extensions: its middleware, and task ids
    in `subscriptions/listen` (the SDK's handler, wrapped)."""
    _REACHES[mcp] = reach
    mcp.middleware.append(reach.middleware)
    lowlevel = lowlevel_server(mcp)
    listen = lowlevel.get_request_handler("subscriptions/listen")
    if listen is not None:
        lowlevel.add_request_handler(
            "subscriptions/listen",
            listen.params_type,
            TaskListen(lambda: reach.slot.rt, listen.handler),
        )


def bind_reach(mcp: MCPServer[Any], rt: Runtime) -> None:
    """Give the server's reach its runtime (a server made without one is left alone)."""
    reach = _REACHES.get(mcp)
    if reach is not None:
        reach.slot.bind(rt)
