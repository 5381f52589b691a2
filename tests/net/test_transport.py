"""The shared client's transport: httpcore2's errors reach callers as httpx2's of the same kind,
bodies stream both ways, the pool keeps its limits, and every connection it makes is guarded."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import anyio
import anyio.abc
import httpcore2
import httpx2
import pytest

from wakecall.errors import UnsafeURL
from wakecall.net import (
    GuardedTransport,
    IPAddress,
    OutboundPolicy,
    build_http_client,
    httpx_error_for,
)

from .conftest import LoopbackServer, raw_server, read_request

LOOPBACK = OutboundPolicy(allow_loopback=True)

KINDS = [
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
    (httpcore2.ConnectionNotAvailable, httpx2.TransportError),
]


@pytest.mark.parametrize(("core", "expected"), KINDS)
def test_every_httpcore_error_becomes_the_httpx_error_of_the_same_kind(
    core: type[Exception], expected: type[httpx2.TransportError]
) -> None:
    request = httpx2.Request("GET", "https://hooks.example/x")
    mapped = httpx_error_for(core("what went wrong"), request)
    assert type(mapped) is expected
    assert str(mapped) == "what went wrong"
    assert mapped.request is request


def test_every_httpcore_error_is_mapped() -> None:
    public = {
        getattr(httpcore2, name)
        for name in httpcore2.__all__
        if isinstance(getattr(httpcore2, name), type)
        and issubclass(getattr(httpcore2, name), Exception)
    }
    assert public == {core for core, _ in KINDS}


@pytest.mark.parametrize("error", [ValueError("no"), UnsafeURL("refused"), TimeoutError()])
def test_errors_that_are_not_httpcores_are_left_as_they_are(error: Exception) -> None:
    assert httpx_error_for(error) is None


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_refused_connection_is_a_connect_error() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/"
    async with build_http_client(LOOPBACK) as client:
        with anyio.fail_after(5), pytest.raises(httpx2.ConnectError) as caught:
            await client.get(url)
    assert caught.value.request.url == url
    assert isinstance(caught.value.__cause__, httpcore2.ConnectError)


async def test_a_resolver_that_does_not_answer_is_a_connect_timeout() -> None:
    async def silent(host: str, port: int) -> list[IPAddress]:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async with build_http_client(LOOPBACK, resolver=silent, timeout=0.2) as client:
        with anyio.fail_after(5), pytest.raises(httpx2.ConnectTimeout, match="resolving"):
            await client.get("http://slow-dns.example/")


async def test_a_server_that_never_answers_is_a_read_timeout() -> None:
    async def mute(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await read_request(stream)
            await anyio.sleep_forever()

    async with raw_server(mute) as port, build_http_client(LOOPBACK, timeout=0.2) as client:
        with anyio.fail_after(5), pytest.raises(httpx2.ReadTimeout) as caught:
            await client.post(f"http://127.0.0.1:{port}/", content=b"{}")
    assert isinstance(caught.value, httpx2.TimeoutException)


async def test_an_answer_that_is_not_http_is_a_remote_protocol_error() -> None:
    async def babble(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await read_request(stream)
            await stream.send(b"SMTP READY\r\n\r\n")

    async with raw_server(babble) as port, build_http_client(LOOPBACK) as client:
        with anyio.fail_after(5), pytest.raises(httpx2.RemoteProtocolError):
            await client.get(f"http://127.0.0.1:{port}/")


async def test_a_body_cut_short_is_an_httpx_error_raised_while_streaming_it() -> None:
    async def cut(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await read_request(stream)
            await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")

    async with raw_server(cut) as port, build_http_client(LOOPBACK) as client:
        with anyio.fail_after(5):
            async with client.stream("GET", f"http://127.0.0.1:{port}/") as response:
                assert response.status_code == 200
                with pytest.raises(httpx2.RemoteProtocolError):
                    await response.aread()


async def test_a_full_pool_is_a_pool_timeout_once_its_timeout_passes() -> None:
    release = anyio.Event()

    async def hold(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await read_request(stream)
            await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
            await release.wait()
            await stream.send(b"ok")

    transport = GuardedTransport(LOOPBACK, limits=httpx2.Limits(max_connections=1))
    async with (
        raw_server(hold) as port,
        httpx2.AsyncClient(transport=transport, timeout=httpx2.Timeout(5, pool=0.2)) as client,
    ):
        url = f"http://127.0.0.1:{port}/"
        with anyio.fail_after(5):
            async with client.stream("GET", url) as first:
                with pytest.raises(httpx2.PoolTimeout):
                    await client.get(url)
                release.set()
                assert await first.aread() == b"ok"


async def test_a_response_body_reaches_the_caller_as_it_arrives() -> None:
    second_part = anyio.Event()

    async def chunked(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await read_request(stream)
            await stream.send(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n"
            )
            await second_part.wait()  # sent only once the caller has the first part
            await stream.send(b"6\r\nsecond\r\n0\r\n\r\n")

    async with raw_server(chunked) as port, build_http_client(LOOPBACK) as client:
        with anyio.fail_after(5):
            async with client.stream("GET", f"http://127.0.0.1:{port}/") as response:
                parts = response.aiter_raw()
                assert await anext(parts) == b"first"
                second_part.set()
                assert [part async for part in parts] == [b"second"]


async def test_a_request_body_is_streamed_from_an_async_iterator() -> None:
    received: list[tuple[bytes, bytes]] = []

    async def record(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            received.append(await read_request(stream))
            await stream.send(b"HTTP/1.1 204 No Content\r\n\r\n")

    async def body() -> AsyncIterator[bytes]:
        for part in (b"one,", b"two,", b"three"):
            yield part

    async with raw_server(record) as port, build_http_client(LOOPBACK) as client:
        with anyio.fail_after(5):
            response = await client.post(f"http://127.0.0.1:{port}/up", content=body())
    assert response.status_code == 204
    ((head, content),) = received
    assert b"transfer-encoding: chunked" in head.lower()
    assert content == b"one,two,three"


async def test_keep_alive_connections_are_reused_and_closed_with_the_transport() -> None:
    peers: list[object] = []

    async def keep_alive(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            peers.append(stream.extra(anyio.abc.SocketAttribute.remote_address))
            while True:
                try:
                    await read_request(stream)
                except anyio.EndOfStream:
                    return
                await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    transport = GuardedTransport(LOOPBACK)
    async with raw_server(keep_alive) as port:
        async with httpx2.AsyncClient(transport=transport) as client:
            with anyio.fail_after(5):
                for _ in range(3):
                    assert (await client.get(f"http://127.0.0.1:{port}/")).text == "ok"
            assert len(peers) == 1 and len(transport.pool.connections) == 1
        assert transport.pool.connections == []


async def test_connections_made_outside_the_pool_are_guarded_too(server: LoopbackServer) -> None:
    transport = GuardedTransport(OutboundPolicy())
    origin = httpcore2.Origin(b"http", b"localhost", server.port)
    connection = transport.connection_to(origin)
    request = httpcore2.Request("GET", f"http://localhost:{server.port}/")
    with anyio.fail_after(5), pytest.raises(UnsafeURL, match=r"localhost at .*loopback"):
        await connection.handle_async_request(request)
    await connection.aclose()
    assert server.requests == []
