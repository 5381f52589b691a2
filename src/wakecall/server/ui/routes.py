"""The operators' page at `/ui` on `wakecall serve --http`.

* `GET /ui` and `GET /ui/assets/{name}`: the page and its static files (no data in them).
* `GET /ui/api/dashboard?task_id=`: the caller's `Dashboard` as JSON.
* `POST /ui/api/tasks/{task_id}/{pause|resume|run_now}` and
  `POST /ui/api/deliveries/{delivery_id}/redeliver`: the tools of the same names, called as
  the caller.
* `GET /ui/api/events?after=N`: the caller's events after cursor N as server-sent events, read
  from the durable log (without moving the position the agent last read), live until the
  client goes or the server stops.

Every request passes the Host and Origin checks of `/mcp`; the `api` routes need the same
bearer tokens as `/mcp` when tokens are configured (the SDK's authentication middleware, over
the whole app, has already checked the token: a caller is the owner its token maps to), and
see only the caller's tasks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from wakecall.errors import Conflict, InvalidInput, LimitReached, NotFound, WakecallError
from wakecall.server.tools.events import EventTools
from wakecall.server.tools.tasks import TaskTools
from wakecall.server.ui.page import ASSETS, asset, operator_html
from wakecall.server.ui.snapshot import read_dashboard
from wakecall.server.views import event_view

if TYPE_CHECKING:
    from wakecall.server.runtime import Runtime

__all__ = ["ui_routes"]

log = logging.getLogger(__name__)

#: Seconds between keep-alive comments on a quiet event stream.
PING_SECONDS = 15.0
#: Events sent per read of the log.
EVENTS_PER_READ = 100

#: The page's policy: its own files only; no inline script or style, no frames, no forms.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "content-security-policy": PAGE_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}
_API_HEADERS = {"cache-control": "no-store", "x-content-type-options": "nosniff"}

_STATUS_OF: tuple[tuple[type[WakecallError], int], ...] = (
    (NotFound, 404),
    (InvalidInput, 400),
    (Conflict, 409),
    (LimitReached, 429),
)

Endpoint = Callable[[Request], Awaitable[Response]]


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={**_API_HEADERS, **headers})


def _refusal(exc: ToolError | WakecallError) -> JSONResponse:
    """A tool's refusal (or the error under it) as an HTTP answer with the same text."""
    cause = exc.__cause__ if isinstance(exc, ToolError) else exc
    status = next((code for kind, code in _STATUS_OF if isinstance(cause, kind)), 400)
    return _error(status, str(exc))


class UiRoutes:
    """The endpoints over one runtime. `tokens_required`: the server has bearer tokens, so the
    `api` routes refuse a caller without a valid one."""

    def __init__(
        self, rt: Runtime, security: TransportSecuritySettings, *, tokens_required: bool
    ) -> None:
        self.rt = rt
        self.checks = TransportSecurityMiddleware(security)
        self.tokens_required = tokens_required
        self.tasks = TaskTools(rt)
        self.events = EventTools(rt)
        self.task_actions: dict[str, Callable[[str], Awaitable[Any]]] = {
            "pause": self.tasks.pause,
            "resume": self.tasks.resume,
            "run_now": self.tasks.run_now,
        }

    # --- checks -----------------------------------------------------------------------------
    async def _refused(self, request: Request) -> Response | None:
        """The Host/Origin (and, for POST, Content-Type) checks of `/mcp`."""
        return await self.checks.validate_request(request, is_post=request.method == "POST")

    def _owner(self) -> str | None:
        """The caller: its token's owner, the local owner without tokens, or None (refused)."""
        token = get_access_token()
        if token is not None:
            return token.client_id
        return None if self.tokens_required else self.rt.settings.owner

    def api(self, endpoint: Callable[[Request, str], Awaitable[Response]]) -> Endpoint:
        """`endpoint(request, owner)` behind the checks and the bearer token."""

        async def checked(request: Request) -> Response:
            refused = await self._refused(request)
            if refused is not None:
                return refused
            owner = self._owner()
            if owner is None:
                return _error(
                    401,
                    "a bearer token is needed: send 'Authorization: Bearer <token>' with a "
                    "token of the server's tokens file",
                    **{"www-authenticate": 'Bearer realm="wakecall"'},
                )
            try:
                return await endpoint(request, owner)
            except (ToolError, WakecallError) as exc:
                return _refusal(exc)

        return checked

    # --- the page ---------------------------------------------------------------------------
    async def page(self, request: Request) -> Response:
        refused = await self._refused(request)
        if refused is not None:
            return refused
        return HTMLResponse(operator_html(), headers=_PAGE_HEADERS)

    async def static(self, request: Request) -> Response:
        refused = await self._refused(request)
        if refused is not None:
            return refused
        name = request.path_params["name"]
        if name not in ASSETS:
            return Response("not found\n", status_code=404, media_type="text/plain")
        return Response(asset(name), media_type=ASSETS[name], headers=_PAGE_HEADERS)

    # --- the api ----------------------------------------------------------------------------
    async def dashboard(self, request: Request, owner: str) -> Response:
        task_id = request.query_params.get("task_id") or None
        board = await read_dashboard(self.rt, owner, task_id)
        return JSONResponse(board.model_dump(mode="json"), headers=_API_HEADERS)

    async def task_action(self, request: Request, owner: str) -> Response:
        name, task_id = request.path_params["action"], request.path_params["task_id"]
        action = self.task_actions.get(name)
        if action is None:
            known = ", ".join(self.task_actions)
            return _error(404, f"no action {name!r} on tasks; the actions are {known}")
        answer = await action(task_id)
        log.info(
            "%s on task %s from /ui (owner %s)",
            name,
            task_id,
            owner,
            extra={"action": f"ui.{name}", "task_id": task_id},
        )
        return JSONResponse(answer.model_dump(mode="json"), headers=_API_HEADERS)

    async def redeliver(self, request: Request, owner: str) -> Response:
        answer = await self.events.redeliver(request.path_params["delivery_id"])
        return JSONResponse(answer.model_dump(mode="json"), headers=_API_HEADERS)

    async def event_stream(self, request: Request, owner: str) -> Response:
        raw = request.query_params.get("after", "")
        if raw == "":
            after = await self.rt.inbox.store.latest_cursor(owner)
        elif raw.isdigit():
            after = int(raw)
        else:
            return _error(400, f"after: expected a cursor (a whole number), not {raw!r}")
        inbox = self.rt.inbox

        async def stream() -> AsyncIterator[str]:
            cursor = after
            yield _sse("ready", {"cursor": cursor})
            while inbox.open:
                found = await inbox.peek(
                    owner, after=cursor, wait=PING_SECONDS, limit=EVENTS_PER_READ
                )
                if not found:
                    yield ": ping\n\n"  # keeps proxies from closing a quiet stream
                for event in found:
                    cursor = event.cursor
                    yield _sse("event", event_view(event).model_dump(mode="json"), cursor)

        # Ends when the client goes (Starlette cancels the stream), or when the server stops
        # (the inbox stops waiting, and the loop ends).
        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={**_API_HEADERS, "x-accel-buffering": "no"},
        )


def _sse(kind: str, data: Any, event_id: int | None = None) -> str:
    """One server-sent event."""
    head = f"event: {kind}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n"


def ui_routes(
    rt: Runtime, security: TransportSecuritySettings, *, tokens_required: bool
) -> list[BaseRoute]:
    """The routes of `/ui` over `rt`, with the Host/Origin checks of `security`."""
    ui = UiRoutes(rt, security, tokens_required=tokens_required)
    return [
        Route("/ui", ui.page, methods=["GET"], include_in_schema=False),
        Route("/ui/assets/{name}", ui.static, methods=["GET"], include_in_schema=False),
        Route("/ui/api/dashboard", ui.api(ui.dashboard), methods=["GET"], include_in_schema=False),
        Route("/ui/api/events", ui.api(ui.event_stream), methods=["GET"], include_in_schema=False),
        Route(
            "/ui/api/tasks/{task_id}/{action}",
            ui.api(ui.task_action),
            methods=["POST"],
            include_in_schema=False,
        ),
        Route(
            "/ui/api/deliveries/{delivery_id}/redeliver",
            ui.api(ui.redeliver),
            methods=["POST"],
            include_in_schema=False,
        ),
    ]
