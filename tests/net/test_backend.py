"""The guarded backend's streams: a request leaves in one write, a large body still streams."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import anyio
import anyio.abc
import httpcore2
import httpx2

from wakecall.net import MAX_HELD_WRITE, GuardedTransport, OutboundPolicy

from .conftest import raw_server, read_request


class CountingTCP(httpcore2.AsyncNetworkBackend):
    """httpcore2's own TCP backend, noting the size of every write on its streams."""

    def __init__(self) -> None:
        self.tcp = httpcore2.AnyIOBackend()
        self.writes: list[int] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        stream = await self.tcp.connect_tcp(host, port, timeout, local_address, socket_options)
        writes = self.writes

        class Counted(httpcore2.AsyncNetworkStream):
            async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
                return await stream.read(max_bytes, timeout)

            async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
                writes.append(len(buffer))
                await stream.write(buffer, timeout)

            async def aclose(self) -> None:
                await stream.aclose()

            def get_extra_info(self, info: str) -> Any:
                return stream.get_extra_info(info)

        return Counted()


async def _answer_each(stream: anyio.abc.SocketStream) -> None:
    async with stream:
        while True:
            try:
                _, body = await read_request(stream)
            except anyio.EndOfStream:
                return
            size = str(len(body)).encode()
            await stream.send(
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(size), size)
            )


def _counted_client() -> tuple[httpx2.AsyncClient, CountingTCP]:
    transport = GuardedTransport(OutboundPolicy(allow_loopback=True))
    counting = CountingTCP()
    transport.backend.tcp = counting
    return httpx2.AsyncClient(transport=transport), counting


SIZES = (10, 1000, 5000)


async def test_each_request_head_and_body_leave_in_one_write() -> None:
    client, counting = _counted_client()
    async with raw_server(_answer_each) as port, client:
        with anyio.fail_after(5):
            for size in SIZES:
                response = await client.post(f"http://127.0.0.1:{port}/", content=b"x" * size)
                assert response.text == str(size)
    assert len(counting.writes) == 3
    assert all(
        written > size for written, size in zip(counting.writes, (10, 1000, 5000), strict=True)
    )


async def test_a_body_larger_than_the_held_bound_is_sent_while_it_is_produced() -> None:
    client, counting = _counted_client()
    part = b"y" * 16 * 1024
    total = 16 * len(part)  # four times the bound

    async def body() -> AsyncIterator[bytes]:
        for _ in range(16):
            yield part

    async with raw_server(_answer_each) as port, client:
        with anyio.fail_after(5):
            response = await client.post(f"http://127.0.0.1:{port}/", content=body())
    assert response.text == str(total)
    assert len(counting.writes) > 3
    assert max(counting.writes) <= MAX_HELD_WRITE + len(part) + 64  # + a chunk's framing
