"""The MCP Apps extension (`io.modelcontextprotocol/ui`) as wakecall offers it: the
`ui://wakecall/tasks.html` resource, rendered by hosts that support Apps when the `show_tasks`
tool answers (see `view_tool`). Light to import: the server is built with it before the
runtime starts, and the HTML is read when a host first asks for it."""

from __future__ import annotations

from mcp.server.apps import APP_MIME_TYPE, Apps
from mcp.server.mcpserver.resources import FunctionResource

from wakecall.server.ui.page import app_html

__all__ = ["APP_URI", "apps_extension"]

APP_URI = "ui://wakecall/tasks.html"


def apps_extension() -> Apps:
    """The extension to pass to `MCPServer(extensions=...)`: it advertises Apps support and
    serves the app's HTML. No `csp` is declared, so hosts apply the restrictive default: the
    app reaches nothing but its host."""
    apps = Apps()
    apps.add_resource(
        FunctionResource(
            uri=APP_URI,
            name="wakecall tasks",
            title="wakecall: tasks, runs and callbacks",
            description="The view of show_tasks: your tasks, one task's runs, stuck callbacks",
            mime_type=APP_MIME_TYPE,
            meta={"ui": {"prefersBorder": True}},
            fn=app_html,
        )
    )
    return apps
