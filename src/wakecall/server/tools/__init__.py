"""The agent-facing tools: one small method each (`tasks`, `events`, `wakeups`), registered
from one table (`table.TOOLS`) with the input schemas of `published.py`. Every call's
arguments are checked before the SDK sees them (`guard`, `refusals`); expected failures become
tool errors whose text says what was wrong and how to fix it; nothing is stored when a call
fails."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mcp.server import MCPServer

from wakecall.server.sdk_reaches import (
    argument_model,
    compact_output_schemas,
    publish_input_schema,
)
from wakecall.server.tools.events import EventTools
from wakecall.server.tools.guard import guard_tool_calls
from wakecall.server.tools.published import INPUT_SCHEMAS
from wakecall.server.tools.refusals import ArgumentCheck
from wakecall.server.tools.table import TOOLS, ToolEntry
from wakecall.server.tools.tasks import TaskTools
from wakecall.server.tools.wakeups import WakeupTools

if TYPE_CHECKING:
    from wakecall.server.runtime import Runtime

__all__ = ["TOOLS", "ToolEntry", "register_tools"]


def register_tools(mcp: MCPServer[Any], rt: Runtime, *, added: Sequence[str] = ()) -> None:
    """Add every tool of `TOOLS`, answered on `rt`, and the check of their arguments; the
    tools named in `added`, registered already by another part of the server (the MCP App's
    `show_tasks`), get their published schema and their check here too."""
    homes = {"tasks": TaskTools(rt), "events": EventTools(rt), "wakeups": WakeupTools(rt)}
    for entry in TOOLS:
        mcp.add_tool(
            getattr(homes[entry.home], entry.name),
            name=entry.name,
            title=entry.title,
            description=entry.description,
        )
    checks: dict[str, ArgumentCheck] = {}
    for name in [*(entry.name for entry in TOOLS), *added]:
        publish_input_schema(mcp, name, INPUT_SCHEMAS[name])
        checks[name] = ArgumentCheck(name, argument_model(mcp, name), rt.tasks.now)
    compact_output_schemas(mcp)
    guard_tool_calls(mcp, checks)
