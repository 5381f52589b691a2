"""`show_tasks`: the tool bound to the MCP App. Hosts that render Apps show the answer in the
app (its structured content is the `Dashboard`); every host, and the model, reads the same view
as text. The app calls it again to refresh, and with `after` and `wait` to wait for news."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from mcp.server import MCPServer
from mcp.server.apps import client_supports_apps
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, TextContent
from pydantic import Field

from wakecall.server.tools.args import tool_errors
from wakecall.server.tools.table import ToolEntry
from wakecall.server.ui.apps import APP_URI
from wakecall.server.ui.snapshot import read_dashboard
from wakecall.server.ui.text import dashboard_text

if TYPE_CHECKING:
    from wakecall.server.runtime import Runtime

__all__ = ["VIEW_TOOL", "ViewTools", "register_view"]

#: The longest `wait` honoured (the app asks again after it).
MAX_WAIT = 25.0

VIEW_TOOL = ToolEntry(
    "show_tasks",
    "ui",
    "Show tasks",
    "Show the user their tasks, next fires, a task's run history and stuck callbacks: a "
    "view in hosts with MCP Apps, text elsewhere.",
)


class ViewTools:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    @tool_errors
    async def show_tasks(
        self,
        ctx: Context[Any],
        task_id: Annotated[str | None, Field(description="whose runs to list")] = None,
        after: Annotated[
            int | None, Field(ge=0, description="the view's cursor: with wait, answer on news")
        ] = None,
        wait: Annotated[float, Field(ge=0, le=MAX_WAIT, description="seconds to wait")] = 0,
    ) -> CallToolResult:
        owner = self.rt.owner()
        if after is not None and wait > 0:
            limit = min(wait, MAX_WAIT, self.rt.settings.max_wait.total_seconds())
            await self.rt.inbox.peek(owner, after=after, wait=limit, limit=1)
        board = await read_dashboard(self.rt, owner, task_id)
        text = TextContent(type="text", text=dashboard_text(board))
        if not client_supports_apps(ctx):
            return CallToolResult(content=[text])
        return CallToolResult(content=[text], structured_content=board.model_dump(mode="json"))


def register_view(mcp: MCPServer[Any], rt: Runtime) -> None:
    """Add `show_tasks`, bound to the app's `ui://` resource, answered on `rt`."""
    mcp.add_tool(
        ViewTools(rt).show_tasks,
        name=VIEW_TOOL.name,
        title=VIEW_TOOL.title,
        description=VIEW_TOOL.description,
        meta={"ui": {"resourceUri": APP_URI}},
    )
