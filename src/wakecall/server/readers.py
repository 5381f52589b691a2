"""Who reads the event log: the client identity of a request, as the inbox keeps read
positions by it.

A reader is an owner and a client identity (`wakecall.delivery.inbox`). The owner is the
bearer token's over HTTP and the `--owner` setting over stdio. The client identity is the name
the client declared for itself: `clientInfo.name` in the handshake (`initialize`), or in a
2026-07-28 request's `_meta`; "" when it declared none. So Claude Code and Codex sharing one
owner each continue from their own position, and a host that starts a new stdio server each
session continues from where its previous session stopped reading. Two windows of the same
host share a position (they declare the same name)."""

from __future__ import annotations

from typing import Any

from mcp.server.context import ServerRequestContext

__all__ = ["client_identity"]

#: The longest client name kept (a position is stored per name).
MAX_CLIENT_NAME = 200


def client_identity(ctx: ServerRequestContext[Any, Any]) -> str:
    """The client identity of the request in `ctx` ("" when the client declared no name)."""
    params = ctx.session.client_params
    if params is None or params.client_info is None:
        return ""
    return (params.client_info.name or "")[:MAX_CLIENT_NAME]
