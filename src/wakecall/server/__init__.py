"""The MCP surface: tools, resources and pushes over stdio and Streamable HTTP.

Names load on first use, so that `wakecall.server.views` (used by the command line) does not
pull in the MCP SDK."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wakecall.server.app import build_http_app, build_server, serve
    from wakecall.server.runtime import Runtime, open_runtime

__all__ = ["Runtime", "build_http_app", "build_server", "open_runtime", "serve"]

_HOMES = {
    "Runtime": "wakecall.server.runtime",
    "open_runtime": "wakecall.server.runtime",
    "build_http_app": "wakecall.server.app",
    "build_server": "wakecall.server.app",
    "serve": "wakecall.server.app",
}


def __getattr__(name: str) -> Any:
    # lazy: start-up time (the command line's views must not load the MCP SDK)
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'wakecall.server' has no attribute {name!r}")
