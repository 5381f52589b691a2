"""The few places where wakecall reaches into private attributes of the MCP SDK (mcp 2.3),
because it offers no public path; nothing else in wakecall does. Each reach is pinned by a test
(`tests/server/test_sdk_reaches.py`) that fails when the SDK renames or removes what it uses,
so an upgrade cannot break one silently.
"""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer
from mcp.server.lowlevel import Server
from mcp.server.session import ServerSession
from pydantic import BaseModel

from wakecall.server.schemas import compact_schema

__all__ = [
    "argument_model",
    "compact_output_schemas",
    "connection_of",
    "lowlevel_server",
    "publish_input_schema",
]


def lowlevel_server(mcp: MCPServer[Any]) -> Server[Any]:
    """The low-level server under `mcp`: handlers for spec methods that `MCPServer` does not
    register (`resources/subscribe`, `logging/setLevel`) are added there."""
    return mcp._lowlevel_server


def compact_output_schemas(mcp: MCPServer[Any]) -> None:
    """Publish every tool's output schema in its cheap-to-validate form (`compact_schema`).
    The SDK reads a tool's `fn_metadata.output_schema` live, both to list the tool and to
    check its results."""
    for tool in mcp._tool_manager.list_tools():
        meta = tool.fn_metadata
        if meta.output_schema is not None:
            meta.output_schema = compact_schema(meta.output_schema)


def publish_input_schema(mcp: MCPServer[Any], name: str, schema: dict[str, Any]) -> None:
    """List `schema` as the input schema of the tool `name` instead of the one generated from
    its parameters. The SDK reads a tool's `parameters` live to list it (and to check
    `Mcp-Param` headers); the parameters' pydantic model still validates each call."""
    tool = mcp._tool_manager.get_tool(name)
    if tool is None:
        raise LookupError(f"no tool {name!r} to publish a schema for")
    tool.parameters = schema


def argument_model(mcp: MCPServer[Any], name: str) -> type[BaseModel]:
    """The pydantic model the SDK validates the arguments of the tool `name` with (built from
    its parameters), so that wakecall can check them first with the very same model."""
    tool = mcp._tool_manager.get_tool(name)
    if tool is None:
        raise LookupError(f"no tool {name!r}")
    return tool.fn_metadata.arg_model


def connection_of(session: ServerSession) -> Any:
    """The connection a session runs on: its exit stack is the only reliable signal that the
    session ended (sends to a dead session do not fail)."""
    return session._connection
