"""How a callback sender POSTs: over keep-alive connections of its own.

Every sender holds its connections (a few, by origin), so a send takes an idle connection
without looking through a pool shared with every other request. The connections are made the
way the shared client makes its own (`AsyncConnectionPool.create_connection` of the client's
transport): through the same network backend, so the outgoing-URL guard judges every address
at connect time, with the same TLS settings and keep-alive expiry. The request carries the
client's default headers (`User-Agent`); redirects are never followed. A request's head and
body leave in one write (one system call, not two: on loopback, where a send costs as much as
the rest of the exchange, that is a quarter of the sender's work).

A client whose transport is not an `httpx2.AsyncHTTPTransport` (a test double, a mounted
transport) is used as it is, through `client.post`.
"""

from __future__ import annotations

import functools
import select
import ssl
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpcore2
import httpx2

__all__ = ["HTTP_ERRORS", "Answer", "Poster", "poster_for"]

#: What a failed exchange raises (besides `UnsafeURL` from the guard): the attempt failed.
HTTP_ERRORS: tuple[type[Exception], ...] = (
    httpx2.HTTPError,
    httpx2.InvalidURL,
    httpcore2.ProtocolError,
    httpcore2.TimeoutException,
    httpcore2.NetworkError,
    httpcore2.UnsupportedProtocol,
    httpcore2.ProxyError,
    httpcore2.ConnectionNotAvailable,
)

#: Connections one sender keeps, each to another origin; the least recently used is closed.
CONNECTIONS_PER_SENDER = 4

#: A response body is read and dropped, up to this size; a larger one closes the connection.
MAX_DRAINED_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class Answer:
    """What a receiver answered: its status and headers (the body is not kept)."""

    status: int
    headers: Sequence[tuple[bytes, bytes]]

    def header(self, name: str) -> str | None:
        """The first value of the header `name` (any case), or None."""
        wanted = name.lower().encode("ascii")
        for key, value in self.headers:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None


class Poster(ABC):
    """POSTs of one sender: `post` one at a time, `aclose` when done."""

    timeout: float

    @abstractmethod
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        """POST `body` with `headers` (each phase of the exchange bounded by `timeout`)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release what the poster keeps."""


class _ClientPoster(Poster):
    def __init__(self, client: httpx2.AsyncClient, timeout: float) -> None:
        self.client = client
        self.timeout = timeout

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        response = await self.client.post(url, content=body, headers=headers, timeout=self.timeout)
        return Answer(response.status_code, response.headers.raw)

    async def aclose(self) -> None:
        pass  # the connections are the shared client's


@functools.lru_cache(maxsize=1024)
def _target(url: str) -> tuple[httpcore2.URL, bytes]:
    """The request URL in httpcore's form, and the `Host` header, of a callback URL."""
    parsed = httpx2.URL(url)
    if parsed.scheme not in ("http", "https"):
        raise httpx2.UnsupportedProtocol(f"callback URLs are http or https, not {url!r}")
    target = httpcore2.URL(
        scheme=parsed.raw_scheme, host=parsed.raw_host, port=parsed.port, target=parsed.raw_path
    )
    return target, parsed.netloc


class _HeldWrites(httpcore2.AsyncNetworkStream):
    """A stream whose writes wait for the next read (or `start_tls`): an HTTP/1.1 client writes
    a whole request, then reads, so each request goes out in one write."""

    def __init__(self, stream: httpcore2.AsyncNetworkStream) -> None:
        self._stream = stream
        self._held: list[bytes] = []
        self._timeout: float | None = None
        self._socket = stream.get_extra_info("socket") if hasattr(select, "poll") else None

    async def _flush(self) -> None:
        if self._held:
            data = b"".join(self._held)
            self._held.clear()
            await self._stream.write(data, timeout=self._timeout)

    async def write(
        self,
        buffer: bytes,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's interface
    ) -> None:
        if buffer:
            self._held.append(buffer)
            self._timeout = timeout

    async def read(
        self,
        max_bytes: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's interface
    ) -> bytes:
        await self._flush()
        return await self._stream.read(max_bytes, timeout=timeout)

    async def aclose(self) -> None:
        self._held.clear()
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's interface
    ) -> httpcore2.AsyncNetworkStream:
        await self._flush()
        return _HeldWrites(await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._socket is not None:
            # Asked before each reuse of a kept connection (has the server closed it?): one
            # poll of the socket, without the stream's lookups and their system calls.
            fd = self._socket.fileno()
            if fd < 0:
                return True
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            return bool(poller.poll(0))
        return self._stream.get_extra_info(info)


class _HoldingWrites(httpcore2.AsyncNetworkBackend):
    """A network backend whose streams hold their writes until the next read."""

    def __init__(self, backend: httpcore2.AsyncNetworkBackend) -> None:
        self._backend = backend

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        stream = await self._backend.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return _HeldWrites(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's interface
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        stream = await self._backend.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )
        return _HeldWrites(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def _new_connection(
    pool: httpcore2.AsyncConnectionPool, origin: httpcore2.Origin
) -> httpcore2.AsyncConnectionInterface:
    """A connection as `pool` makes them, writing each request at once where it can (a direct
    HTTP connection: its network backend is the pool's, wrapped)."""
    connection = pool.create_connection(origin)
    backend = getattr(connection, "_network_backend", None)
    if isinstance(connection, httpcore2.AsyncHTTPConnection) and isinstance(
        backend, httpcore2.AsyncNetworkBackend
    ):
        connection._network_backend = _HoldingWrites(backend)
    return connection


_Key = tuple[bytes, bytes, int]  # an origin: scheme, host, port


class _ConnectionPoster(Poster):
    def __init__(
        self, client: httpx2.AsyncClient, pool: httpcore2.AsyncConnectionPool, timeout: float
    ) -> None:
        self.pool = pool
        self.timeout = timeout
        # The client's default headers (User-Agent, Accept…), as it would send them.
        self._defaults = [(k, v) for k, v in client.headers.raw if k.lower() != b"host"]
        self._connections: OrderedDict[_Key, httpcore2.AsyncConnectionInterface] = OrderedDict()

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        target, host = _target(url)
        raw = [(b"Host", host), *self._defaults]
        raw += [(k.encode("ascii"), v.encode("ascii")) for k, v in headers.items()]
        raw.append((b"Content-Length", str(len(body)).encode("ascii")))
        request = httpcore2.Request(
            b"POST",
            target,
            headers=raw,
            content=body,
            extensions={
                "timeout": dict.fromkeys(("connect", "read", "write", "pool"), self.timeout)
            },
        )
        origin = target.origin
        key = (origin.scheme, origin.host, origin.port)
        connection = await self._idle_connection(key, origin)
        try:
            response = await connection.handle_async_request(request)
        except httpcore2.ConnectionNotAvailable:
            # Found unusable before anything was sent: once more on a new connection.
            await self._drop(key)
            connection = await self._idle_connection(key, origin)
            response = await connection.handle_async_request(request)
        try:
            drained = 0
            async for chunk in response.aiter_stream():
                drained += len(chunk)
                if drained > MAX_DRAINED_BODY:
                    break  # closing the response closes the connection
        finally:
            await response.aclose()
        return Answer(response.status, response.headers)

    async def _idle_connection(
        self, key: _Key, origin: httpcore2.Origin
    ) -> httpcore2.AsyncConnectionInterface:
        connection = self._connections.get(key)
        if connection is not None:
            if connection.is_idle() and not connection.has_expired():
                self._connections.move_to_end(key)
                return connection
            await self._drop(key)
        while len(self._connections) >= CONNECTIONS_PER_SENDER:
            await self._drop(next(iter(self._connections)))
        connection = _new_connection(self.pool, origin)
        self._connections[key] = connection
        return connection

    async def _drop(self, key: _Key) -> None:
        connection = self._connections.pop(key, None)
        if connection is not None:
            await connection.aclose()

    async def aclose(self) -> None:
        while self._connections:
            await self._drop(next(iter(self._connections)))


def poster_for(client: httpx2.AsyncClient, timeout: float) -> Poster:
    """A poster for one sender, sending as `client` would (see the module's doc), each phase
    of an exchange (connect, write, read) bounded by `timeout` seconds."""
    # The client's transport and its pool are private to httpx2: only their connection
    # settings are used (`create_connection`), and anything unexpected falls back to `post`.
    transport = getattr(client, "_transport", None)
    pool = getattr(transport, "_pool", None)
    if (
        isinstance(transport, httpx2.AsyncHTTPTransport)
        and isinstance(pool, httpcore2.AsyncConnectionPool)
        and not getattr(client, "_mounts", None)  # a mounted transport decides by itself
    ):
        return _ConnectionPoster(client, pool, timeout)
    return _ClientPoster(client, timeout)
