"""The MCP surface: tools, resources and pushes over stdio and Streamable HTTP."""

from __future__ import annotations

from wakecall.server.app import Runtime, build_http_app, build_server, open_runtime, serve

__all__ = ["Runtime", "build_http_app", "build_server", "open_runtime", "serve"]
