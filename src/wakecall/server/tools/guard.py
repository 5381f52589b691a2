"""The check of every tool call's arguments, before the SDK validates them.

It wraps the server's `tools/call` handler (whatever the SDK and its extensions made of it), so
a refused call is answered like any tool result, with the envelope each protocol generation
wants: a tool error in the house style (`refusals.ArgumentCheck`), and the tool never runs.
The answers of the tools' own failures lose the SDK's "Error executing tool NAME: " prefix, so
every refusal reads the same way. The tool answers inside the W3C trace context of the
call's `_meta` (`call_trace`)."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from typing import Any

from mcp.server import MCPServer
from mcp.server.context import HandlerResult, ServerRequestContext
from mcp.types import CallToolRequestParams, CallToolResult, TextContent
from pydantic import BaseModel

from wakecall.errors import InvalidInput
from wakecall.server.call_trace import tracing_call
from wakecall.server.sdk_reaches import lowlevel_server
from wakecall.server.tools.refusals import ArgumentCheck

__all__ = ["guard_tool_calls"]

log = logging.getLogger(__name__)


def guard_tool_calls(mcp: MCPServer[Any], checks: Mapping[str, ArgumentCheck]) -> None:
    """Check the arguments of each call of a tool in `checks` before `mcp` handles it; calls
    that pass go on with their arguments as checked (nulls of optional ones left out)."""
    lowlevel = lowlevel_server(mcp)
    entry = lowlevel.get_request_handler("tools/call")
    if entry is None:
        raise LookupError("the server has no tools/call handler to guard")
    handle = entry.handler

    async def checked(ctx: ServerRequestContext[Any, Any], params: BaseModel) -> HandlerResult:
        assert isinstance(params, CallToolRequestParams)  # the params type of tools/call
        check = checks.get(params.name)
        if check is not None:
            try:
                arguments = check(params.arguments)
            except InvalidInput as exc:
                log.info("tool %s refused its arguments", params.name)
                return _tool_error(str(exc))
            params = params.model_copy(update={"arguments": arguments})
        with tracing_call(ctx.meta):  # the runs the tool starts carry the call's trace
            result = await handle(ctx, params)
        return _in_our_words(params.name, result, list(checks))

    lowlevel.add_request_handler("tools/call", entry.params_type, checked)


def _tool_error(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def _in_our_words(tool: str, result: HandlerResult, tools: list[str]) -> HandlerResult:
    """`result` without the SDK's prefix on a tool error's text; an unknown tool is named with
    the closest of `tools`."""
    if not isinstance(result, CallToolResult) or not result.is_error or len(result.content) != 1:
        return result
    block = result.content[0]
    if not isinstance(block, TextContent):
        return result
    if block.text == f"Unknown tool: {tool}":
        closest = difflib.get_close_matches(tool, tools, n=1, cutoff=0.6)
        hint = f"did you mean {closest[0]!r}?" if closest else "tools/list shows them."
        return _tool_error(
            f"there is no tool {tool!r}; {hint} wakecall's tools: {', '.join(tools)}"
        )
    prefix = f"Error executing tool {tool}"
    if block.text.startswith(f"{prefix}: "):
        return _tool_error(block.text.removeprefix(f"{prefix}: "))
    if block.text == prefix:  # a crash: its details stay in the server's log
        return _tool_error(f"{tool} failed on the server (the error is in its log); try again")
    return result
