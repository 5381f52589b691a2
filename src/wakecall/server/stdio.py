"""Serving one MCP connection over stdin and stdout, answering every request.

The SDK's stdio transport drops a line it cannot parse (invalid JSON, a lone surrogate such as
`"a\\ud800"`, nesting deeper than its parser allows, `params` that is not an object, a batch):
the host then waits forever for an answer. wakecall reads the client's input itself. Each line
is checked with the SDK's own message parser before the transport sees it; a line that fails
is answered with a JSON-RPC error, a parse error (-32700) or an invalid request (-32600), with
the request's id when one can be read (each request's id for a batch), and serving goes on.

The client's input is read from a private duplicate of fd 0 while fd 0 itself points at the
null device, as the SDK does, so that nothing else in the process (or a child) consumes the
protocol's bytes; stdout is the SDK's.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import AsyncIterable, AsyncIterator, Callable
from io import TextIOWrapper
from typing import IO, Any, cast

import anyio
import mcp_types as types
from anyio.abc import ObjectSendStream
from mcp.server import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from wakecall.server.sdk_reaches import lowlevel_server

__all__ = ["CheckedLines", "answers_for", "serve_stdio_connection"]

_ID_KEY = re.compile(r'"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.)*")')
_POSITION = re.compile(r"line (\d+) column (\d+)")
#: A \uXXXX escape of a high surrogate not followed by a low one, or a low one alone.
_LONE_SURROGATE = re.compile(
    r"(?<!\\)\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


async def serve_stdio_connection(mcp: MCPServer[Any]) -> None:
    """Serve `mcp` over the process's stdin and stdout until the client closes its input."""
    stdin, restore = _claim_stdin()
    try:
        wrapped = TextIOWrapper(stdin, encoding="utf-8", errors="replace")
        lines = CheckedLines(anyio.wrap_file(wrapped))
        # `stdio_server` iterates its stdin, which is all `CheckedLines` offers.
        async with stdio_server(stdin=cast(Any, lines)) as (read_stream, write_stream):
            lines.answer_on(write_stream)
            lowlevel = lowlevel_server(mcp)
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
    finally:
        restore()


class CheckedLines:
    """The lines of the client's input that are JSON-RPC messages, for the SDK's transport;
    each other line is answered with JSON-RPC errors (`answers_for`) and left out."""

    def __init__(self, lines: AsyncIterable[str]) -> None:
        self._lines = lines
        self._answers: ObjectSendStream[SessionMessage] | None = None
        self._ready = anyio.Event()

    def answer_on(self, answers: ObjectSendStream[SessionMessage]) -> None:
        """Send the errors on `answers` (the transport's outgoing stream)."""
        self._answers = answers
        self._ready.set()

    async def __aiter__(self) -> AsyncIterator[str]:
        async for line in self._lines:
            if not line.strip():
                continue
            errors = answers_for(line)
            if not errors:
                yield line
                continue
            await self._ready.wait()
            assert self._answers is not None
            for error in errors:
                await self._answers.send(SessionMessage(error))


def answers_for(line: str) -> list[types.JSONRPCError]:
    """Nothing for a line the SDK reads as a JSON-RPC message; otherwise the errors to answer
    it with (none for a malformed notification inside a batch)."""
    try:
        types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        return []
    except ValidationError as exc:
        failure = exc.errors(include_url=False)[0]
    unreadable = failure["type"] == "json_invalid"
    try:
        value: Any = json.loads(line)
    except (ValueError, RecursionError):
        return [_error(_id_in_text(line), types.PARSE_ERROR, _why_not_json(failure, line))]
    if isinstance(value, list):
        ids = [_id_of(item) for item in value if isinstance(item, dict) and "id" in item]
        why = "batches are not supported; send each message on a line of its own"
        return [_error(request_id, types.INVALID_REQUEST, why) for request_id in ids or [None]]
    request_id = _id_of(value) if isinstance(value, dict) else None
    if unreadable:
        return [_error(request_id, types.PARSE_ERROR, _why_not_json(failure, line))]
    return [_error(request_id, types.INVALID_REQUEST, _why_not_a_message(value))]


def _error(request_id: int | str | None, code: int, why: str) -> types.JSONRPCError:
    kind = "Parse error" if code == types.PARSE_ERROR else "Invalid request"
    return types.JSONRPCError(
        jsonrpc="2.0", id=request_id, error=types.ErrorData(code=code, message=f"{kind}: {why}")
    )


def _why_not_json(failure: Any, line: str) -> str:
    detail = str((failure.get("ctx") or {}).get("error", failure.get("msg", "")))
    if "recursion limit" in detail:
        return "the message nests too deeply; keep JSON under 200 levels of nesting"
    if _LONE_SURROGATE.search(line):
        return (
            "a string holds a lone UTF-16 surrogate (such as \\ud800), which is not Unicode; "
            "send text as UTF-8, or a surrogate pair"
        )
    if "EOF while parsing" in detail:
        return "the line ends before its JSON does; each line must be one whole JSON-RPC message"
    where = _POSITION.search(detail)
    at = f" at column {where.group(2)}" if where and where.group(1) == "1" else ""
    return f"the line is not valid JSON{at}; each line must be one JSON-RPC message"


def _why_not_a_message(value: Any) -> str:
    if not isinstance(value, dict):
        return f"a message must be a JSON object, got {type(value).__name__}"
    if "params" in value and not isinstance(value["params"], dict):
        return "params must be an object"
    if value.get("jsonrpc") != "2.0":
        return 'a message must say "jsonrpc": "2.0"'
    return (
        'not a JSON-RPC 2.0 message: a request has "jsonrpc": "2.0", an "id" (a number or a '
        'string), a "method" (a string) and, if any, "params" (an object)'
    )


def _id_of(message: dict[str, Any]) -> int | str | None:
    request_id = message.get("id")
    if isinstance(request_id, str) or (
        isinstance(request_id, int) and not isinstance(request_id, bool)
    ):
        return request_id
    return None


def _id_in_text(line: str) -> int | str | None:
    """The "id" of the outermost object of a line that is not valid JSON, when it can be read
    (so the host waiting for that id gets its answer)."""
    depth, in_string, escaped = 0, False, False
    for index, char in enumerate(line):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            found = _ID_KEY.match(line, index) if depth == 1 else None
            if found:
                try:
                    request_id = json.loads(found.group(1))
                except ValueError:
                    return None
                return request_id if isinstance(request_id, int | str) else None
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
    return None


def _claim_stdin() -> tuple[IO[bytes], Callable[[], None]]:
    """The client's input as a private duplicate of fd 0, with fd 0 pointed at the null device
    until the returned function restores it (as the SDK's transport does). The duplicate is
    never closed: a worker thread may still be blocked reading it."""
    try:
        backed_by_fd0 = sys.stdin.fileno() == 0
    except (AttributeError, OSError, ValueError):
        backed_by_fd0 = False
    if not backed_by_fd0:
        return sys.stdin.buffer, lambda: None
    private = os.dup(0)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
    finally:
        os.close(null)

    def restore() -> None:
        os.dup2(private, 0)

    return os.fdopen(private, "rb", closefd=False), restore
