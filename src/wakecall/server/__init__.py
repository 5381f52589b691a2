"""The MCP surface: tools, resources and pushes over stdio and Streamable HTTP.

Names load on first use, so that `wakecall.server.views` (used by the command line) does not
pull in the MCP SDK."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wakecall.server.app import Runtime, build_http_app, build_server, open_runtime, serve

__all__ = ["Runtime", "build_http_app", "build_server", "open_runtime", "serve"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from wakecall.server import app

        return getattr(app, name)
    raise AttributeError(f"module 'wakecall.server' has no attribute {name!r}")
