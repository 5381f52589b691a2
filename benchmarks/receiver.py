"""A webhook receiver for the callback benchmark, run as its own process on 127.0.0.1.

It speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies) to answer every POST with
200 at once, noting when each request arrived, its Standard Webhooks headers and its body.
Nothing is verified while it runs (so the receiver costs as little as possible); the
benchmark verifies the signatures afterwards. `GET /dump` answers with everything received.

    python -m benchmarks.receiver     # prints "port N", serves until stdin closes
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import ClassVar

KEEP = ("webhook-id", "webhook-timestamp", "webhook-signature", "x-wakecall-event")
OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'


class Receiver(asyncio.Protocol):
    records: ClassVar[list[dict[str, object]]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        arrived = time.time()
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < head_end + 4 + length:
                return
            body = self.buffer[head_end + 4 : head_end + 4 + length]
            self.buffer = self.buffer[head_end + 4 + length :]
            method, path = head[0].split(" ")[:2]
            if method == "GET" and path == "/dump":
                payload = json.dumps(Receiver.records).encode()
                self.transport.write(  # type: ignore[attr-defined]
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                continue
            Receiver.records.append(
                {
                    "t": arrived,
                    "headers": {k: headers[k] for k in KEEP if k in headers},
                    "body": body.decode(),
                }
            )
            self.transport.write(OK)  # type: ignore[attr-defined]


async def main() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Receiver, "127.0.0.1", 0, backlog=512)
    port = server.sockets[0].getsockname()[1]
    print(f"port {port}", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the benchmark closes our stdin
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
