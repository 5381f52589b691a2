"""End-to-end helpers: wakecall as a real process, driven through the MCP SDK's clients.

Tests cannot import each other (``--import-mode=importlib``), so everything shared lives
behind the ``wakecall`` fixture: ``wakecall.stdio_params(...)``, ``wakecall.http_server(...)``,
``wakecall.recorder()``, ``wakecall.call(...)`` and friends.

Every server gets its own SQLite file, and ``HOME`` / ``XDG_DATA_HOME`` point into the test's
temporary directory, so nothing touches the real user data directory. Servers run with
``python -W error``: a warning on any server path is a failure.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import anyio
import httpx2
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client, StdioServerParameters, types
from mcp.client import ClientExtension, NotificationBinding
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.message import SessionMessage
from pydantic import BaseModel, Field

CHANNEL_METHOD = "notifications/claude/channel"
TOKENS = {"tok-alice": "alice", "tok-bob": "bob"}
SERVING = re.compile(rb"serving MCP on (http://\S+/mcp)")

#: Starting a Python process that imports the SDK takes about a second; leave room for a
#: loaded machine without letting a hung server stall the suite.
START_TIMEOUT = 15


class ChannelParams(BaseModel):
    """The params of Claude Code's channel message, as a client sees them."""

    content: str
    meta: dict[str, str] = Field(default_factory=dict)


class ChannelObserver(ClientExtension):
    """The SDK client drops notifications it does not know; this binding makes it hand
    ``notifications/claude/channel`` to a handler instead."""

    identifier = "dev.wakecall/channel-observer"

    def __init__(self, handler: Callable[[ChannelParams], Awaitable[None]]) -> None:
        self._handler = handler

    def notifications(self) -> list[NotificationBinding[Any]]:
        return [
            NotificationBinding(
                method=CHANNEL_METHOD, params_type=ChannelParams, handler=self._handler
            )
        ]


class Recorder:
    """What a client received: spec notifications, log messages, channel messages and, when
    its transport is wrapped by ``Wakecall.recording``, every raw JSON-RPC notification."""

    def __init__(self) -> None:
        self.notifications: list[Any] = []
        self.logs: list[types.LoggingMessageNotificationParams] = []
        self.channel: list[ChannelParams] = []
        self.raw: list[dict[str, Any]] = []
        self.errors: list[Exception] = []
        self._changed = anyio.Event()

    def bump(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def message_handler(self, message: Any) -> None:
        if isinstance(message, Exception):
            self.errors.append(message)
        else:
            self.notifications.append(message)
        self.bump()

    async def logging_callback(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append(params)
        self.bump()

    async def on_channel(self, params: ChannelParams) -> None:
        self.channel.append(params)
        self.bump()

    def client_kwargs(self) -> dict[str, Any]:
        return {
            "message_handler": self.message_handler,
            "logging_callback": self.logging_callback,
            "extensions": [ChannelObserver(self.on_channel)],
        }

    def updated(self, uri: str) -> list[types.ResourceUpdatedNotification]:
        return [
            n
            for n in self.notifications
            if isinstance(n, types.ResourceUpdatedNotification) and n.params.uri == uri
        ]

    def logs_of(self, event_type: str) -> list[dict[str, Any]]:
        return [
            log.data
            for log in self.logs
            if isinstance(log.data, dict) and log.data.get("event") == event_type
        ]

    def channel_of(self, event_type: str) -> list[ChannelParams]:
        return [c for c in self.channel if c.meta.get("event") == event_type]

    def raw_of(self, method: str) -> list[dict[str, Any]]:
        return [m for m in self.raw if m["method"] == method]

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until `predicate()` holds, re-checked on every received message. Unbounded:
        the caller bounds it with `anyio.fail_after`."""
        while not predicate():
            await self._changed.wait()


@asynccontextmanager
async def _raw_recording(transport: Any, recorder: Recorder) -> AsyncIterator[Any]:
    """Wrap a client transport and tee each incoming JSON-RPC notification into
    ``recorder.raw`` (the SDK's session hides vendor methods and some framing details)."""
    async with transport as (read, write):
        send, receive = anyio.create_memory_object_stream[SessionMessage | Exception](256)

        async def pump() -> None:
            async with send:
                try:
                    async for item in read:
                        if isinstance(item, SessionMessage) and isinstance(
                            item.message, types.JSONRPCNotification
                        ):
                            recorder.raw.append(
                                item.message.model_dump(by_alias=True, exclude_none=True)
                            )
                            recorder.bump()
                        await send.send(item)
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    pass

        async with receive, anyio.create_task_group() as tg:
            tg.start_soon(pump)
            try:
                yield receive, write
            finally:
                tg.cancel_scope.cancel()


@dataclass
class HttpServer:
    """A running ``wakecall serve --http`` process."""

    url: str
    store: str | Path
    process: Process
    stderr: bytearray = field(default_factory=bytearray)
    returncode: int | None = None  # set once the server has been stopped

    @property
    def stderr_text(self) -> str:
        return self.stderr.decode(errors="replace")


@dataclass
class Exited:
    """A server process that ran to its end."""

    returncode: int
    stdout: str
    stderr: str


class Wakecall:
    """Start wakecall servers for one test and talk to them."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.home = tmp_path / "home"
        self.home.mkdir()
        self._stores = 0
        self.errlog_path = tmp_path / "stdio-servers.stderr"
        self._errlog: TextIO | None = None

    # --- processes ---------------------------------------------------------------------------
    def new_store(self) -> Path:
        self._stores += 1
        return self.tmp_path / f"wakecall-{self._stores}.db"

    def env(self, **extra: str) -> dict[str, str]:
        """Variables a server needs beyond the SDK's safe defaults: a private home."""
        return {
            "HOME": str(self.home),
            "XDG_DATA_HOME": str(self.home / ".local" / "share"),
            "PYTHONUNBUFFERED": "1",
            **extra,
        }

    def full_env(self, **extra: str) -> dict[str, str]:
        """This process's environment without any WAKECALL_* setting, plus `env()`."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("WAKECALL_")}
        return {**inherited, **self.env(**extra)}

    def serve_args(self, *flags: str, store: str | Path | None = None) -> list[str]:
        store = store or self.new_store()
        return ["-W", "error", "-m", "wakecall", "serve", "--store", str(store), *flags]

    def stdio_params(self, *flags: str, store: Path | None = None) -> StdioServerParameters:
        """`python -m wakecall serve` over stdio, with its own store unless one is given."""
        return StdioServerParameters(
            command=sys.executable,
            args=self.serve_args(*flags, store=store),
            env=self.env(),
            cwd=str(self.tmp_path),
        )

    @property
    def errlog(self) -> TextIO:
        """Where stdio servers started by `stdio_transport` write their stderr."""
        if self._errlog is None:
            self._errlog = self.errlog_path.open("a")
        return self._errlog

    def stdio_transport(self, *flags: str, recorder: Recorder) -> Any:
        """A stdio transport to a new server whose raw notifications go to `recorder`."""
        return _raw_recording(stdio_client(self.stdio_params(*flags), errlog=self.errlog), recorder)

    async def run_to_end(self, *flags: str, env: dict[str, str] | None = None) -> Exited:
        """Run `wakecall serve ...` with no input and collect what it printed."""
        result = await anyio.run_process(
            [sys.executable, *self.serve_args(*flags)],
            input=b"",
            env=env or self.full_env(),
            cwd=str(self.tmp_path),
            check=False,
        )
        return Exited(result.returncode, result.stdout.decode(), result.stderr.decode())

    @asynccontextmanager
    async def http_server(
        self,
        *flags: str,
        tokens: dict[str, str] | None = None,
        store: str | Path | None = None,
        new_session: bool = False,
    ) -> AsyncIterator[HttpServer]:
        """`wakecall serve --http` on a free loopback port; the URL is read from stderr.
        `store` may be a SQLite path or a PostgreSQL URL (default: a new SQLite file); with
        `new_session` the server leads its own process group (to SIGKILL it with its
        children)."""
        tokens = TOKENS if tokens is None else tokens
        extra = {"WAKECALL_TOKENS": ",".join(f"{t}={o}" for t, o in tokens.items())}
        store = store or self.new_store()
        args = self.serve_args("--http", "--host", "127.0.0.1", "--port", "0", *flags, store=store)
        process = await anyio.open_process(
            [sys.executable, *args],
            env=self.full_env(**extra) if tokens else self.full_env(),
            cwd=str(self.tmp_path),
            stdin=None,
            start_new_session=new_session,
        )
        seen, drained = anyio.Event(), anyio.Event()
        stderr = bytearray()
        try:
            async with anyio.create_task_group() as tg:

                async def drain() -> None:
                    assert process.stderr is not None
                    lines = BufferedByteReceiveStream(process.stderr)
                    try:
                        while True:
                            line = await lines.receive_until(b"\n", 1 << 20)
                            stderr.extend(line + b"\n")
                            if SERVING.search(line):
                                seen.set()
                    except (anyio.EndOfStream, anyio.IncompleteRead, anyio.ClosedResourceError):
                        pass
                    finally:
                        seen.set()
                        drained.set()

                tg.start_soon(drain)
                with anyio.fail_after(START_TIMEOUT):
                    await seen.wait()
                found = SERVING.search(bytes(stderr))
                if found is None:
                    raise AssertionError(
                        f"the HTTP server did not start:\n{stderr.decode(errors='replace')}"
                    )
                server = HttpServer(found.group(1).decode(), store, process, stderr)
                try:
                    yield server
                finally:
                    with anyio.CancelScope(shield=True):
                        server.returncode = await _stop(process)
                        with anyio.move_on_after(5):
                            await drained.wait()
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await _stop(process)
                await process.aclose()
            sys.stderr.write(stderr.decode(errors="replace"))

    @asynccontextmanager
    async def http_transport(
        self, url: str, token: str | None, recorder: Recorder | None = None
    ) -> AsyncIterator[Any]:
        """Streamable HTTP with our own httpx2 client, which carries the bearer header."""
        headers = {"Authorization": f"Bearer {token}"} if token else None
        async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(10, read=60)) as http:
            transport = streamable_http_client(url, http_client=http)
            if recorder is not None:
                transport = _raw_recording(transport, recorder)
            async with transport as streams:
                yield streams

    def client(
        self, transport: Any, *, mode: str = "auto", recorder: Recorder | None = None
    ) -> Client:
        kwargs = recorder.client_kwargs() if recorder is not None else {}
        return Client(transport, mode=mode, **kwargs)

    def recorder(self) -> Recorder:
        return Recorder()

    def close(self) -> None:
        if self._errlog is not None:
            self._errlog.close()
            sys.stderr.write(self.errlog_path.read_text())

    # --- tool calls ----------------------------------------------------------------------------
    @staticmethod
    def text_of(result: types.CallToolResult) -> str:
        return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))

    async def call(self, client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Call a tool that must succeed; its structured answer."""
        with anyio.fail_after(10):
            result = await client.call_tool(tool, arguments)
        assert not result.is_error, f"{tool} failed: {self.text_of(result)}"
        assert result.structured_content is not None, tool
        return result.structured_content

    async def call_error(self, client: Client, tool: str, arguments: dict[str, Any]) -> str:
        """Call a tool that must fail; the error text the agent sees."""
        with anyio.fail_after(10):
            result = await client.call_tool(tool, arguments)
        assert result.is_error, f"{tool} unexpectedly succeeded: {result.structured_content}"
        assert result.structured_content is None
        return self.text_of(result)

    async def wait_for_event(
        self,
        client: Client,
        event_type: str,
        *,
        after: int = 0,
        task_id: str | None = None,
    ) -> dict[str, Any]:
        """Long-poll `get_events` until an event of this type (and task) arrives."""
        with anyio.fail_after(15):
            while True:
                page = await self.call(client, "get_events", {"after": after, "wait": 5})
                for event in page["events"]:
                    if event["type"] == event_type and task_id in (None, event["task_id"]):
                        return event
                after = page["cursor"]

    @staticmethod
    async def subscribe(client: Client, uri: str) -> None:
        """`resources/subscribe` (the SDK's own helper for it is deprecated)."""
        with anyio.fail_after(10):
            await client.session.send_request(
                types.SubscribeRequest(params=types.SubscribeRequestParams(uri=uri)),
                types.EmptyResult,
            )


async def _stop(process: Process) -> int | None:
    """Ctrl-C (SIGINT), then SIGKILL if the process has not exited within a few seconds;
    the exit status."""
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
        with anyio.move_on_after(5):
            await process.wait()
    if process.returncode is None:
        process.kill()
        with anyio.move_on_after(5):
            await process.wait()
    return process.returncode


@pytest.fixture
def wakecall(tmp_path: Path) -> Iterator[Wakecall]:
    """Start and drive wakecall servers; their stderr is shown when a test fails."""
    helper = Wakecall(tmp_path)
    try:
        yield helper
    finally:
        helper.close()


@pytest.fixture
def tokens() -> dict[str, str]:
    """The bearer tokens `Wakecall.http_server` starts with: token → owner."""
    return dict(TOKENS)
