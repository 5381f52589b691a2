"""Over stdio, a request that could not be parsed got no answer at all.

Invalid JSON, a lone surrogate ("a\\ud800"), nesting of 199 levels or more, `params` as an
array, a batch: the SDK's stdio reader dropped each of them, and the host waited forever on
that id (over HTTP the same inputs get a JSON-RPC error). wakecall now reads stdin itself and
answers each such line with a JSON-RPC error, with the request's id when one can be read; the
server stays up and answers the next request.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import types

from support.protocol import INITIALIZE
from wakecall.server.stdio import answers_for

INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def ping(request_id: int, **params: Any) -> str:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": "ping"}
    if params:
        message["params"] = params
    return json.dumps(message)


def nested(depth: int) -> str:
    """A ping whose params nest `depth` levels deep."""
    return (
        '{"jsonrpc": "2.0", "id": 5, "method": "ping", "params": {"x": '
        + '{"a": ' * depth
        + "1"
        + "}" * depth
        + "}}"
    )


#: Each line the SDK could not parse, with the id and error code it must be answered with.
BROKEN = [
    ('{"jsonrpc": "2.0", "id": 2, "method": "ping"', 2, types.PARSE_ERROR),
    ('{"jsonrpc": "2.0", "id": "three", "method": ping}', "three", types.PARSE_ERROR),
    (
        '{"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": '
        '"schedule_wakeup", "arguments": {"in": "5m", "reason": "a\\ud800"}}}',
        4,
        types.PARSE_ERROR,
    ),
    (nested(199), 5, types.PARSE_ERROR),
    (nested(5000), 5, types.PARSE_ERROR),
    ('{"jsonrpc": "2.0", "id": 6, "method": "ping", "params": []}', 6, types.INVALID_REQUEST),
    ('"not an object"', None, types.INVALID_REQUEST),
    ("this is not JSON", None, types.PARSE_ERROR),
]


def test_each_unparseable_line_has_its_answer() -> None:
    for line, request_id, code in BROKEN:
        (answer,) = answers_for(line)
        assert (answer.id, answer.error.code) == (request_id, code), line[:80]
        assert answer.error.message.startswith(("Parse error: ", "Invalid request: "))
    batch = answers_for(f"[{ping(7)}, {ping(8)}]")
    assert [(a.id, a.error.code) for a in batch] == [(7, -32600), (8, -32600)]
    assert "batches are not supported" in batch[0].error.message
    assert answers_for(ping(9)) == []
    assert answers_for(nested(190)) == []


async def test_a_stdio_server_answers_every_line_and_stays_up(tmp_path: Path) -> None:
    lines = [
        json.dumps(INITIALIZE),
        json.dumps(INITIALIZED),
        *(line for line, _, _ in BROKEN),
        f"[{ping(7)}, {ping(8)}]",
        "",
        ping(99),
    ]
    expected = {1, 2, "three", 4, 5, 6, 7, 8, 99}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("WAKECALL_")},
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    store = tmp_path / "w.db"
    process = await anyio.open_process(
        [sys.executable, "-W", "error", "-m", "wakecall", "serve", "--store", str(store)],
        env=env,
        cwd=str(tmp_path),
    )
    answers: list[dict[str, Any]] = []
    async with process:
        try:
            with anyio.fail_after(30):
                assert process.stdin is not None and process.stdout is not None
                await process.stdin.send("\n".join(lines).encode() + b"\n")
                reader = BufferedByteReceiveStream(process.stdout)
                while not expected <= {a.get("id") for a in answers}:
                    answers.append(json.loads(await reader.receive_until(b"\n", 1 << 22)))
                await process.stdin.aclose()
                assert await process.wait() == 0
        finally:
            if process.returncode is None:
                process.kill()
    by_id = {a["id"]: a for a in answers}
    assert by_id[99]["result"] == {}  # still serving after every broken line
    for _, request_id, code in BROKEN:
        if request_id is not None:
            assert by_id[request_id]["error"]["code"] == code
    assert by_id[7]["error"]["code"] == by_id[8]["error"]["code"] == types.INVALID_REQUEST
    assert [a["error"]["code"] for a in answers if a["id"] is None] == [
        types.INVALID_REQUEST,
        types.PARSE_ERROR,
    ]
