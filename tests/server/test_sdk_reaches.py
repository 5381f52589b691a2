"""Each reach into the MCP SDK's private attributes (all in `server/sdk_reaches.py`), pinned:
these fail when an upgrade renames or removes what wakecall relies on, instead of wakecall
breaking silently."""

from __future__ import annotations

import contextlib
from typing import Any

import anyio
from mcp import types
from mcp.client import Client
from mcp.server import MCPServer
from mcp.server.lowlevel import Server
from pydantic import BaseModel

from wakecall.server.sdk_reaches import (
    argument_model,
    compact_output_schemas,
    connection_of,
    lowlevel_server,
    publish_input_schema,
)


class Answer(BaseModel):
    value: int | None = None


def _server() -> MCPServer[Any]:
    mcp: MCPServer[Any] = MCPServer("pinned")

    @mcp.tool()
    async def answer() -> Answer:
        return Answer(value=42)

    @mcp.tool()
    async def double(number: int) -> Answer:
        return Answer(value=2 * number)

    return mcp


def test_the_low_level_server_takes_handlers_for_spec_methods() -> None:
    mcp = _server()
    lowlevel = lowlevel_server(mcp)
    assert isinstance(lowlevel, Server)

    async def on_set_level(ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
        return types.EmptyResult()

    lowlevel.add_request_handler("logging/setLevel", types.SetLevelRequestParams, on_set_level)
    assert lowlevel.get_request_handler("logging/setLevel") is not None


async def test_compacted_output_schemas_are_the_ones_listed_and_checked() -> None:
    # Compacted before the first listing, as the server does: the SDK keeps what it listed.
    mcp = _server()
    compact_output_schemas(mcp)
    compacted = {t.name: t.output_schema for t in await mcp.list_tools()}
    assert compacted["answer"] is not None
    assert compacted["answer"]["properties"]["value"] == {
        "type": ["integer", "null"],
        "default": None,
        "title": "Value",
    }
    with anyio.fail_after(5):
        async with Client(mcp) as client:
            result = await client.call_tool("answer", {})
    assert not result.is_error and result.structured_content == {"value": 42}


async def test_a_session_s_connection_has_an_exit_stack_that_runs_when_it_ends() -> None:
    mcp = _server()
    ended: list[str] = []
    seen: list[Any] = []

    async def capture(ctx: Any, call_next: Any) -> Any:
        connection = connection_of(ctx.session)
        if not seen:
            assert isinstance(connection.exit_stack, contextlib.AsyncExitStack)
            connection.exit_stack.callback(ended.append, "ended")
        seen.append(connection)
        return await call_next(ctx)

    mcp.middleware.append(capture)
    with anyio.fail_after(5):
        async with Client(mcp, mode="legacy") as client:
            await client.list_tools()
            await client.list_tools()
            assert ended == []
    assert seen and all(c is seen[0] for c in seen)
    assert ended == ["ended"]


async def test_a_published_input_schema_is_listed_and_the_parameters_still_validate() -> None:
    mcp = _server()
    schema = {
        "type": "object",
        "properties": {"number": {"type": "integer", "minimum": 0, "maximum": 9}},
        "required": ["number"],
        "additionalProperties": False,
    }
    publish_input_schema(mcp, "double", schema)
    model = argument_model(mcp, "double")
    assert issubclass(model, BaseModel) and list(model.model_fields) == ["number"]
    with anyio.fail_after(5):
        async with Client(mcp) as client:
            listed = {t.name: t.input_schema for t in (await client.list_tools()).tools}
            assert listed["double"] == schema
            doubled = await client.call_tool("double", {"number": 4})
            refused = await client.call_tool("double", {"number": "four"})
    assert doubled.structured_content == {"value": 8}
    assert refused.is_error  # the SDK validates with the parameters' model, not the schema
