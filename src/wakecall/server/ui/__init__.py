"""Seeing it: the task view as an MCP App in the conversation (`apps`, `view_tool`) and as a
page for operators at `/ui` on the HTTP server (`routes`), both made of the static files in
`static/` (`page`) and both showing the `Dashboard` read through the task service
(`snapshot`); `text` is the same view for hosts without Apps.

Only `apps` is imported with the server (it is light); the rest load with the runtime."""

from __future__ import annotations

from wakecall.server.ui.apps import APP_URI, apps_extension

__all__ = ["APP_URI", "apps_extension"]
