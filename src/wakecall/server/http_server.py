"""uvicorn as `wakecall serve --http` runs it: the process's signals are left to `wakecall serve`,
which stops the runtime first (see `wakecall.server.app.serve`), and the requests still open
when the server stops are answered before the event streams of MCP sessions are ended."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

import anyio
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["CLOSE_SECONDS", "HttpServer"]

#: When the server stops, how long the requests being answered (tool calls; long polls are
#: answered at once) may take before the event streams are ended and, 2 s later, any request
#: still open is cut.
CLOSE_SECONDS = 2


class _OpenRequests:
    """ASGI middleware counting the requests being answered, GET requests aside: the event
    stream of an MCP session is a GET request that never ends by itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.count = 0
        self._changed = anyio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "GET":
            await self.app(scope, receive, send)
            return
        self.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.count -= 1
            self._changed.set()
            self._changed = anyio.Event()

    async def all_answered(self) -> None:
        while self.count:
            await self._changed.wait()


class HttpServer(uvicorn.Server):
    """A uvicorn server for `app` that installs no signal handlers (uvicorn's own would stop
    serving on SIGTERM and then raise the signal again, ending the process before the runtime
    has stopped): `stop` stops it. `options` are `uvicorn.Config`'s."""

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        self.requests = _OpenRequests(app)
        super().__init__(
            uvicorn.Config(self.requests, timeout_graceful_shutdown=CLOSE_SECONDS + 2, **options)
        )

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def stop(self) -> None:
        """Refuse new connections; let the requests being answered end (for up to
        `CLOSE_SECONDS`); then end the event streams. `serve` returns once every connection
        has closed."""
        self.should_exit = True
        with anyio.move_on_after(CLOSE_SECONDS):
            await self.requests.all_answered()
        # uvicorn's own reaction to SIGTERM, into which sse-starlette (the event streams of
        # the MCP SDK) hooks to end its streams. Called only now: it would also end the
        # stream carrying the answer of a request still open.
        self.handle_exit(signal.SIGTERM, None)
