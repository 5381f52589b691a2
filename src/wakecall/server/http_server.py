"""uvicorn as `wakecall serve --http` runs it: the process's signals are left to `wakecall serve`,
which stops the runtime first (see `wakecall.server.app.serve`), and requests still open when
the server stops get a bounded time to end."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

import uvicorn

__all__ = ["CLOSE_SECONDS", "HttpServer"]

#: When the server stops, how long requests still open may take to end before they are cut (long
#: polls are answered at once).
CLOSE_SECONDS = 2


class HttpServer(uvicorn.Server):
    """A uvicorn server that installs no signal handlers (uvicorn's own would stop serving on
    SIGTERM and then raise the signal again, ending the process before the runtime has
    stopped): `stop` stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def stop(self) -> None:
        """Refuse new connections and close the others once their requests have ended. This is
        uvicorn's own reaction to SIGTERM, into which sse-starlette (the event streams of MCP
        sessions) hooks to end its streams, which would otherwise never end by themselves."""
        self.handle_exit(signal.SIGTERM, None)
