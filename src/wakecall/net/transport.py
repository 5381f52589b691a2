"""The shared client's transport: an `httpx2.AsyncBaseTransport` of wakecall's own, holding an
`httpcore2.AsyncConnectionPool` whose every connection is made by `GuardedBackend`.

It maps each `httpx2.Request` onto an `httpcore2.Request`, each `httpcore2.Response` (and its
body, streamed) onto an `httpx2.Response`, and every httpcore2 error onto the httpx2 error of
the same kind (a read timeout stays a read timeout, a connect error a connect error), so
callers catch httpx2's errors only. `UnsafeURL` from the guard passes through as it is.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from types import TracebackType
from typing import Self

import httpcore2
import httpx2

from .backend import GuardedBackend
from .guard import OutboundPolicy, Resolver

__all__ = ["DEFAULT_LIMITS", "GuardedTransport", "httpx_error_for"]

DEFAULT_LIMITS = httpx2.Limits(max_connections=100, max_keepalive_connections=20)

#: httpcore2's errors and the httpx2 error each becomes, the most specific first.
_ERRORS: tuple[tuple[type[Exception], type[httpx2.TransportError]], ...] = (
    (httpcore2.ConnectTimeout, httpx2.ConnectTimeout),
    (httpcore2.ReadTimeout, httpx2.ReadTimeout),
    (httpcore2.WriteTimeout, httpx2.WriteTimeout),
    (httpcore2.PoolTimeout, httpx2.PoolTimeout),
    (httpcore2.TimeoutException, httpx2.TimeoutException),
    (httpcore2.ConnectError, httpx2.ConnectError),
    (httpcore2.ReadError, httpx2.ReadError),
    (httpcore2.WriteError, httpx2.WriteError),
    (httpcore2.NetworkError, httpx2.NetworkError),
    (httpcore2.LocalProtocolError, httpx2.LocalProtocolError),
    (httpcore2.RemoteProtocolError, httpx2.RemoteProtocolError),
    (httpcore2.ProtocolError, httpx2.ProtocolError),
    (httpcore2.ProxyError, httpx2.ProxyError),
    (httpcore2.UnsupportedProtocol, httpx2.UnsupportedProtocol),
    # The pool retries a connection found unusable before anything was sent; should one
    # still escape, it is a transport failure of no more precise kind.
    (httpcore2.ConnectionNotAvailable, httpx2.TransportError),
)


def httpx_error_for(
    error: Exception, request: httpx2.Request | None = None
) -> httpx2.TransportError | None:
    """The httpx2 error that stands for an httpcore2 `error` (same kind, same message), or
    None when `error` is not one of httpcore2's."""
    for core_type, httpx_type in _ERRORS:
        if isinstance(error, core_type):
            return httpx_type(str(error), request=request)
    return None


@contextlib.contextmanager
def _httpcore_errors_as_httpx(request: httpx2.Request | None) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        mapped = httpx_error_for(exc, request)
        if mapped is None:
            raise
        raise mapped from exc


class _ResponseBody(httpx2.AsyncByteStream):
    """A response body streamed from httpcore2, its errors raised as httpx2's."""

    def __init__(self, body: AsyncIterable[bytes], request: httpx2.Request) -> None:
        self.body = body
        self.request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpcore_errors_as_httpx(self.request):
            async for chunk in self.body:
                yield chunk

    async def aclose(self) -> None:
        close = getattr(self.body, "aclose", None)
        if close is not None:
            with _httpcore_errors_as_httpx(self.request):
                await close()


class GuardedTransport(httpx2.AsyncBaseTransport):
    """HTTP/1.1 over connections that `GuardedBackend` makes: every address judged by
    `policy` at connect time; TLS verified (`verify`) against the URL's host name.

    Knows no proxy (a proxy would make the connect-time check judge the proxy's address
    instead of the target's) and follows no redirect (that is the client's business, and the
    shared client does not). `pool` is the connection pool, with `limits`.
    """

    ssl_context: ssl.SSLContext
    limits: httpx2.Limits

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        resolver: Resolver | None = None,
        verify: ssl.SSLContext | bool = True,
        limits: httpx2.Limits = DEFAULT_LIMITS,
    ) -> None:
        self.backend = GuardedBackend(policy, resolver=resolver)
        self.ssl_context = httpx2.create_ssl_context(verify=verify, trust_env=False)
        self.limits = limits
        self.pool = httpcore2.AsyncConnectionPool(
            ssl_context=self.ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=self.backend,
        )

    def connection_to(self, origin: httpcore2.Origin) -> httpcore2.AsyncHTTPConnection:
        """A new connection to `origin`, made as the pool makes its own (through the guarded
        backend, with the same TLS settings and keep-alive expiry), for a caller that keeps
        its connections itself: the pool does not know it, and its limits do not count it.
        It connects on its first request; close it with `aclose()`."""
        return httpcore2.AsyncHTTPConnection(
            origin=origin,
            ssl_context=self.ssl_context,
            keepalive_expiry=self.limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=self.backend,
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        core_request = httpcore2.Request(
            method=request.method,
            url=httpcore2.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpcore_errors_as_httpx(request):
            response = await self.pool.handle_async_request(core_request)
        body = response.stream
        assert isinstance(body, AsyncIterable), "an async pool streams async bodies"
        return httpx2.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseBody(body, request),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        with _httpcore_errors_as_httpx(None):
            await self.pool.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.aclose()
