"""The agent-facing tools: one small method each (`tasks`, `events`, `wakeups`), registered
from one table (`table.TOOLS`). Expected failures become tool errors whose text says what was
wrong and how to fix it; nothing is stored when a call fails."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcp.server import MCPServer

from wakecall.server.sdk_reaches import compact_output_schemas
from wakecall.server.tools.events import EventTools
from wakecall.server.tools.table import TOOLS, ToolEntry
from wakecall.server.tools.tasks import TaskTools
from wakecall.server.tools.wakeups import WakeupTools

if TYPE_CHECKING:
    from wakecall.server.runtime import Runtime

__all__ = ["TOOLS", "ToolEntry", "register_tools"]


def register_tools(mcp: MCPServer[Any], rt: Runtime) -> None:
    """Add every tool of `TOOLS`, answered on `rt`."""
    homes = {"tasks": TaskTools(rt), "events": EventTools(rt), "wakeups": WakeupTools(rt)}
    for entry in TOOLS:
        mcp.add_tool(
            getattr(homes[entry.home], entry.name),
            name=entry.name,
            title=entry.title,
            description=entry.description,
        )
    compact_output_schemas(mcp)
