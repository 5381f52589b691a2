"""How a callback sender POSTs: on the shared client over connections of its own, on any other
client through the client; the same request either way, and httpx2's errors."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import httpx2
import pytest

from wakecall.delivery.http import MAX_DRAINED_BODY, Poster, poster_for
from wakecall.errors import UnsafeURL
from wakecall.net import GuardedClient, OutboundPolicy, build_http_client

LOOPBACK = OutboundPolicy(allow_loopback=True)
HEADERS = {"content-type": "application/json", "webhook-id": "msg_1"}

Handler = Callable[[anyio.abc.SocketStream, bytes], Coroutine[Any, Any, bool]]


async def _read_head_and_body(stream: anyio.abc.SocketStream) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive()
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        body += await stream.receive()
    return head


@asynccontextmanager
async def _server(answer: Handler) -> AsyncIterator[tuple[str, list[bytes], list[int]]]:
    """A keep-alive server on 127.0.0.1: `answer(stream, head)` answers each request and says
    whether to keep the connection. Yields the URL, the request heads, one entry per connection."""
    heads: list[bytes] = []
    connections: list[int] = []

    async def handle(stream: anyio.abc.SocketStream) -> None:
        connections.append(len(connections))
        async with stream:
            while True:
                try:
                    head = await _read_head_and_body(stream)
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return
                heads.append(head)
                if not await answer(stream, head):
                    return

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield f"http://127.0.0.1:{port}/hook?x=1", heads, connections
        tg.cancel_scope.cancel()


async def _ok(stream: anyio.abc.SocketStream, head: bytes) -> bool:
    await stream.send(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\nX-Seen: yes\r\n\r\nok")
    return True


@asynccontextmanager
async def _poster(client: httpx2.AsyncClient, seconds: float = 5) -> AsyncIterator[Poster]:
    poster = poster_for(client, seconds)
    try:
        yield poster
    finally:
        await poster.aclose()


def _fields(head: bytes) -> tuple[str, dict[str, str]]:
    line, *rest = head.decode("latin-1").split("\r\n")
    return line, {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in rest)}


async def test_the_shared_client_and_any_other_client_send_the_same_request() -> None:
    async with (
        _server(_ok) as (url, heads, _),
        build_http_client(LOOPBACK) as shared,
        httpx2.AsyncClient(headers={"User-Agent": shared.headers["user-agent"]}) as other,
    ):
        for client in (shared, other):
            async with _poster(client) as poster:
                with anyio.fail_after(5):
                    answer = await poster.post(url, b'{"a": 1}', HEADERS)
            assert answer.status == 202 and answer.header("x-seen") == "yes"
    own, theirs = (_fields(head) for head in heads)
    assert own[0] == theirs[0] == "POST /hook?x=1 HTTP/1.1"
    for name in ("host", "user-agent", "content-type", "content-length", "webhook-id"):
        assert own[1][name] == theirs[1][name], name
    assert own[1]["user-agent"].startswith("wakecall")


async def test_a_sender_keeps_its_connection_for_the_next_post() -> None:
    async with _server(_ok) as (url, heads, connections), build_http_client(LOOPBACK) as client:
        async with _poster(client) as poster:
            with anyio.fail_after(5):
                for _ in range(3):
                    assert (await poster.post(url, b"{}", HEADERS)).status == 202
    assert len(heads) == 3 and len(connections) == 1


async def test_a_long_answer_is_read_up_to_a_bound_and_its_connection_not_used_again() -> None:
    async def long_answer(stream: anyio.abc.SocketStream, head: bytes) -> bool:
        size = 4 * MAX_DRAINED_BODY
        await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        try:
            await stream.send(b"z" * size)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return False
        return True

    async with (
        _server(long_answer) as (url, heads, connections),
        build_http_client(LOOPBACK) as client,
    ):
        async with _poster(client) as poster:
            with anyio.fail_after(5):
                assert (await poster.post(url, b"{}", HEADERS)).status == 200
                assert (await poster.post(url, b"{}", HEADERS)).status == 200
    assert len(heads) == 2 and len(connections) == 2


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_post_that_cannot_connect_raises_httpx_connect_error() -> None:
    async with build_http_client(LOOPBACK) as client, _poster(client) as poster:
        assert isinstance(client, GuardedClient)
        with anyio.fail_after(5), pytest.raises(httpx2.ConnectError):
            await poster.post(f"http://127.0.0.1:{_closed_port()}/hook", b"{}", HEADERS)


async def test_a_post_without_an_answer_raises_httpx_read_timeout() -> None:
    async def mute(stream: anyio.abc.SocketStream, head: bytes) -> bool:
        await anyio.sleep_forever()
        return False

    async with _server(mute) as (url, _, _), build_http_client(LOOPBACK) as client:
        async with _poster(client, seconds=0.2) as poster:
            with anyio.fail_after(5), pytest.raises(httpx2.ReadTimeout):
                await poster.post(url, b"{}", HEADERS)


async def test_a_post_to_a_refused_address_raises_the_guards_refusal() -> None:
    async with _server(_ok) as (url, heads, _), build_http_client(OutboundPolicy()) as client:
        async with _poster(client) as poster:
            with anyio.fail_after(5), pytest.raises(UnsafeURL, match="loopback"):
                await poster.post(url, b"{}", HEADERS)
    assert heads == []
