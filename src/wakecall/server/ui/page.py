"""The task view's static files, shipped in the package (`static/`), and the two documents made
of them: the MCP App (one self-contained HTML file, its style and scripts inline, since a host
renders it in a sandbox that loads nothing) and the operators' page at `/ui` (the same markup,
its style and scripts served beside it from `/ui/assets/`). Assembling them is a string
replacement when first asked for; nothing is built at install."""

from __future__ import annotations

from functools import cache
from importlib import resources

__all__ = ["ASSETS", "app_html", "asset", "operator_html"]

#: The files `/ui/assets/{name}` serves, with their media types.
ASSETS = {
    "tasks.css": "text/css; charset=utf-8",
    "view.js": "text/javascript; charset=utf-8",
    "operator.js": "text/javascript; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
}

_STYLE = "<!--style-->"
_SCRIPTS = "<!--scripts-->"


@cache
def asset(name: str) -> str:
    """The text of one of the package's static files."""
    return (resources.files("wakecall.server.ui") / "static" / name).read_text(encoding="utf-8")


def _inline_script(name: str) -> str:
    text = asset(name)
    if "</script" in text.lower():  # would end the element early
        raise ValueError(f"{name} cannot be inlined: it contains '</script'")
    return f"<script>\n{text}</script>"


@cache
def app_html() -> str:
    """The MCP App: `tasks.html` with the style and the scripts inline (`app.js` talks to the
    host)."""
    page = asset("tasks.html").replace('data-mode=""', 'data-mode="app"')
    page = page.replace(_STYLE, f"<style>\n{asset('tasks.css')}</style>")
    return page.replace(_SCRIPTS, _inline_script("view.js") + "\n" + _inline_script("app.js"))


@cache
def operator_html() -> str:
    """The operators' page: `tasks.html` linking its style and scripts (`operator.js` reads
    `/ui/api/`)."""
    page = asset("tasks.html").replace('data-mode=""', 'data-mode="operator"')
    page = page.replace(_STYLE, '<link rel="stylesheet" href="/ui/assets/tasks.css">')
    return page.replace(
        _SCRIPTS,
        '<script src="/ui/assets/view.js" defer></script>\n'
        '<script src="/ui/assets/operator.js" defer></script>',
    )
