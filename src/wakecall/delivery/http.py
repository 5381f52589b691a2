"""How a callback sender POSTs: over keep-alive connections of its own.

With wakecall's shared client (`wakecall.net.GuardedClient`), every sender holds its
connections (a few, by origin), so a send takes an idle connection without the bookkeeping of
the pool shared with every other request. Its transport makes them as its pool makes its own
(`GuardedTransport.connection_to`): through the guarded network backend, so the outgoing-URL
guard judges every address at connect time, with the same TLS settings and keep-alive expiry,
each request leaving in one write. The request carries the client's default headers
(`User-Agent`); redirects are never followed. Errors are raised as httpx2's.

Any other client (a test double, another transport) is used as it is, through its public API.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import httpcore2
import httpx2

from wakecall.net import GuardedClient, GuardedTransport, httpx_error_for

__all__ = ["HTTP_ERRORS", "Answer", "Poster", "poster_for"]

#: What a failed exchange raises (besides `UnsafeURL` from the guard): the attempt failed.
HTTP_ERRORS: tuple[type[Exception], ...] = (httpx2.HTTPError, httpx2.InvalidURL)

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


class ClientPoster(Poster):
    """POSTs through `client.stream`, over the client's own connections."""

    def __init__(self, client: httpx2.AsyncClient, timeout: float) -> None:
        self.client = client
        self.timeout = timeout

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        async with self.client.stream(
            "POST", url, content=body, headers=headers, timeout=self.timeout
        ) as response:
            drained = 0
            if not response.is_stream_consumed:  # a test double's answer may come read
                async for chunk in response.aiter_raw():
                    drained += len(chunk)
                    if drained > MAX_DRAINED_BODY:
                        break
        return Answer(response.status_code, response.headers.raw)

    async def aclose(self) -> None:
        pass  # the connections are the client's


@functools.lru_cache(maxsize=1024)
def _target(url: str) -> tuple[httpcore2.URL, bytes]:
    """The request URL in httpcore2's form, and the `Host` header, of a callback URL."""
    parsed = httpx2.URL(url)
    if parsed.scheme not in ("http", "https"):
        raise httpx2.UnsupportedProtocol(f"callback URLs are http or https, not {url!r}")
    target = httpcore2.URL(
        scheme=parsed.raw_scheme, host=parsed.raw_host, port=parsed.port, target=parsed.raw_path
    )
    return target, parsed.netloc


_Origin = tuple[bytes, bytes, int]  # scheme, host, port


class ConnectionPoster(Poster):
    """POSTs over connections this poster keeps, made by the shared client's transport."""

    def __init__(self, client: GuardedClient, timeout: float) -> None:
        self.transport: GuardedTransport = client.guarded_transport
        self.timeout = timeout
        # The client's default headers (User-Agent, Accept…), as it would send them.
        self.defaults = [(k, v) for k, v in client.headers.raw if k.lower() != b"host"]
        self.connections: OrderedDict[_Origin, httpcore2.AsyncConnectionInterface] = OrderedDict()

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        try:
            return await self._post(url, body, headers)
        except Exception as exc:
            mapped = httpx_error_for(exc)
            if mapped is None:
                raise
            raise mapped from exc

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        target, host = _target(url)
        raw = [(b"Host", host), *self.defaults]
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
        self, key: _Origin, origin: httpcore2.Origin
    ) -> httpcore2.AsyncConnectionInterface:
        connection = self.connections.get(key)
        if connection is not None:
            if connection.is_idle() and not connection.has_expired():
                self.connections.move_to_end(key)
                return connection
            await self._drop(key)
        while len(self.connections) >= CONNECTIONS_PER_SENDER:
            await self._drop(next(iter(self.connections)))
        connection = self.transport.connection_to(origin)
        self.connections[key] = connection
        return connection

    async def _drop(self, key: _Origin) -> None:
        connection = self.connections.pop(key, None)
        if connection is not None:
            await connection.aclose()

    async def aclose(self) -> None:
        while self.connections:
            await self._drop(next(iter(self.connections)))


def poster_for(client: httpx2.AsyncClient, timeout: float) -> Poster:
    """A poster for one sender, sending as `client` would (see the module's doc), each phase
    of an exchange (connect, write, read) bounded by `timeout` seconds."""
    if isinstance(client, GuardedClient):
        return ConnectionPoster(client, timeout)
    return ClientPoster(client, timeout)
