"""What the server adds to reach every host, beyond its tools: read positions by client
identity, the MCP Events extension and the MCP Tasks extension.

`Reach` is made with the server (its extensions must be given to `MCPServer`) and bound to
the runtime once that has started (`bind_reach`, from `add_runtime`): over stdio the server
answers the handshake before the runtime exists, and no other request is answered before.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from mcp.server import MCPServer
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension

from wakecall.delivery.inbox import reading_as
from wakecall.server.readers import client_identity

if TYPE_CHECKING:
    from wakecall.server.runtime import Runtime
    from wakecall.settings import Settings

__all__ = ["Reach", "RuntimeSlot", "attach_reach", "bind_reach", "new_reach"]


class RuntimeSlot:
    """The runtime, once it has started (the extensions' handlers run only after)."""

    def __init__(self) -> None:
        self._rt: Runtime | None = None

    def bind(self, rt: Runtime) -> None:
        self._rt = rt

    @property
    def rt(self) -> Runtime:
        if self._rt is None:
            raise RuntimeError("the runtime has not started")
        return self._rt


class Reach:
    """The extensions of one server and the middleware that names each request's reader."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.slot = RuntimeSlot()
        self.extensions: list[Extension] = []

    async def middleware(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        with reading_as(client_identity(ctx)):
            return await call_next(ctx)


_REACHES: weakref.WeakKeyDictionary[MCPServer[Any], Reach] = weakref.WeakKeyDictionary()


def new_reach(settings: Settings) -> Reach:
    """The reach of a server about to be made: give `reach.extensions` to `MCPServer`, then
    `attach` it."""
    return Reach(settings)


def attach_reach(mcp: MCPServer[Any], reach: Reach) -> None:
    """Install `reach` on the server made with its extensions."""
    _REACHES[mcp] = reach
    mcp.middleware.append(reach.middleware)


def bind_reach(mcp: MCPServer[Any], rt: Runtime) -> None:
    """Give the server's reach its runtime (a server made without one is left alone)."""
    reach = _REACHES.get(mcp)
    if reach is not None:
        reach.slot.bind(rt)
