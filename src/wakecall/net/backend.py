"""The connect-time half of the outgoing-URL guard: an httpcore2 network backend.

Every connection of the shared client is made here: the host is resolved by wakecall itself,
every address it resolves to is judged (`check_host`), and the connection goes to a vetted
address. A name that resolved to a public address when the task was created and to 127.0.0.1
later (DNS rebinding) is refused then. TLS is layered on top by httpcore2 with the original
host name, for SNI and for certificate verification.

The streams it returns send what the HTTP/1.1 client writes between two reads in one write:
a request's head and its body leave in one system call, not two (on loopback, where a send
costs as much as the rest of the exchange, that is a quarter of a callback's work).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterable
from typing import Any

import anyio
import httpcore2

from .guard import OutboundPolicy, Resolver, check_host

__all__ = ["MAX_HELD_WRITE", "GuardedBackend", "OneWritePerRequestStream"]

log = logging.getLogger(__name__)

#: Bytes a stream holds back before it sends them without waiting for the next read (a large
#: request body is streamed, not gathered whole in memory).
MAX_HELD_WRITE = 64 * 1024


class OneWritePerRequestStream(httpcore2.AsyncNetworkStream):
    """A network stream whose writes wait for the next read (or `start_tls`), up to
    `MAX_HELD_WRITE` bytes: an HTTP/1.1 client writes a whole request, then reads, so each
    request goes out in one write.

    Only for HTTP/1.1 (the pool of `GuardedTransport` speaks nothing else): an HTTP/2
    connection may write and then wait for the peer without reading first.
    """

    def __init__(self, stream: httpcore2.AsyncNetworkStream) -> None:
        self.stream = stream
        self._held: list[bytes] = []
        self._held_size = 0
        self._timeout: float | None = None

    async def _send_held(self) -> None:
        if self._held:
            data = b"".join(self._held)
            self._held.clear()
            self._held_size = 0
            await self.stream.write(data, timeout=self._timeout)

    async def write(
        self,
        buffer: bytes,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's interface
    ) -> None:
        if not buffer:
            return
        self._held.append(buffer)
        self._held_size += len(buffer)
        self._timeout = timeout
        if self._held_size > MAX_HELD_WRITE:
            await self._send_held()

    async def read(
        self,
        max_bytes: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's interface
    ) -> bytes:
        await self._send_held()
        return await self.stream.read(max_bytes, timeout=timeout)

    async def aclose(self) -> None:
        self._held.clear()
        self._held_size = 0
        await self.stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's interface
    ) -> httpcore2.AsyncNetworkStream:
        await self._send_held()
        tls = await self.stream.start_tls(ssl_context, server_hostname, timeout)
        return OneWritePerRequestStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self.stream.get_extra_info(info)


class GuardedBackend(httpcore2.AsyncNetworkBackend):
    """An httpcore2 network backend that resolves each host itself, judges every address, and
    connects only to a vetted one, trying them in the resolver's order within the timeout.

    `tcp` is the backend that opens the TCP connections to the vetted addresses.
    """

    def __init__(self, policy: OutboundPolicy, *, resolver: Resolver | None = None) -> None:
        self.policy = policy
        self.resolver = resolver
        self.tcp: httpcore2.AsyncNetworkBackend = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        deadline = None if timeout is None else anyio.current_time() + timeout
        try:
            with anyio.fail_after(timeout):
                addresses = await check_host(host, port, self.policy, resolver=self.resolver)
        except TimeoutError:
            raise httpcore2.ConnectTimeout(
                f"resolving {host} took longer than {timeout}s"
            ) from None
        except OSError as exc:
            raise httpcore2.ConnectError(f"could not resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore2.ConnectError(f"{host} resolves to no address")
        last_error: Exception | None = None
        for ip in addresses:
            remaining = None if deadline is None else deadline - anyio.current_time()
            if remaining is not None and remaining <= 0:
                break
            try:
                stream = await self.tcp.connect_tcp(
                    str(ip),
                    port,
                    timeout=remaining,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore2.ConnectError as exc:
                log.debug("connecting to %s (%s) port %d failed: %s", host, ip, port, exc)
                last_error = exc
            else:
                return OneWritePerRequestStream(stream)
        if last_error is None:
            raise httpcore2.ConnectTimeout(f"connecting to {host} took longer than {timeout}s")
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's interface
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise httpcore2.ConnectError("wakecall does not connect to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)
