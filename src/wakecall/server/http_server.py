"""uvicorn as `wakecall serve --http` runs it: the process's signals are left to `wakecall serve`,
which stops the runtime first (see `wakecall.server.app.serve`), and requests still open when
the server stops get a bounded time to end."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import uvicorn

__all__ = ["CLOSE_SECONDS", "HttpServer"]

#: When the server stops, how long requests still open may take to end before they are cut (long
#: polls are answered at once; an open event stream would never end by itself).
CLOSE_SECONDS = 2


class HttpServer(uvicorn.Server):
    """A uvicorn server that installs no signal handlers: set `should_exit` to stop it. (uvicorn's
    own handlers would stop serving on SIGTERM and then raise the signal again, ending the
    process before the runtime has stopped.)"""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
