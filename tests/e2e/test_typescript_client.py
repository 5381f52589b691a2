"""wakecall's Events and Tasks extensions through a third-party client: the TypeScript SDK's
`client.request` with result schemas of its own (tests/node/clients.mjs), run with Node
against a real `wakecall serve --http`. `.ci/run` installs the SDK (`npm ci` in tests/node);
there these tests must run (`WAKECALL_REQUIRE_NODE=1`, see tests/conftest.py)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

NODE_DIR = Path(__file__).parent.parent / "node"
NODE = shutil.which("node")
INSTALLED = (NODE_DIR / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.node,
    pytest.mark.skipif(
        NODE is None or not INSTALLED,
        reason="needs Node and the TypeScript SDK: npm ci --prefix tests/node",
    ),
]


async def scenario(name: str, url: str, token: str) -> dict[str, Any]:
    assert NODE is not None
    with anyio.fail_after(90):
        done = await anyio.run_process(
            [NODE, str(NODE_DIR / "clients.mjs"), name, url, token], check=False
        )
    sys.stderr.write(done.stderr.decode(errors="replace"))
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    saw: dict[str, Any] = json.loads(done.stdout)
    return saw


async def test_typescript_client_polls_events(wakecall: Any) -> None:
    async with wakecall.http_server() as server:
        saw = await scenario("poll", server.url, "tok-alice")
    assert "task.run.completed" in saw["listed"] and len(saw["listed"]) == 8
    assert saw["start"]["events"] == [] and not saw["start"]["truncated"]
    (event,) = saw["answer"]["events"]
    assert event["name"] == "task.run.completed"
    assert event["data"]["task"]["id"] == saw["taskId"]
    assert int(saw["answer"]["cursor"]) > int(saw["start"]["cursor"])


async def test_typescript_client_streams_events_until_it_cancels(wakecall: Any) -> None:
    async with wakecall.http_server("--events-heartbeat", "0.3s") as server:
        saw = await scenario("stream", server.url, "tok-alice")
    assert saw["ending"] == "cancelled"
    (active,) = saw["active"]
    assert active["truncated"] is False
    (event,) = saw["events"]
    assert event["data"]["task"]["id"] == saw["taskId"] and event["cursor"]
    assert saw["heartbeats"][0]["cursor"] == event["cursor"]
    # Cancelled: the run made afterwards was not pushed on the stream.
    assert saw["pushedAfter"] == saw["pushedBefore"] == 1


async def test_typescript_client_follows_a_run_as_a_task(wakecall: Any) -> None:
    async with wakecall.http_server("--commands", "sleep") as server:
        saw = await scenario("tasks", server.url, "tok-alice")
    # A noop run may have ended by the time run_now answers; a 30 s one has not.
    assert saw["created"]["resultType"] == "task"
    assert saw["created"]["status"] in ("working", "completed")
    assert saw["long"]["resultType"] == "task" and saw["long"]["status"] == "working"
    assert saw["done"]["status"] == "completed"
    assert saw["done"]["result"]["structuredContent"]["status"] == "success"
    assert saw["done"]["result"]["structuredContent"]["task_id"] == saw["taskId"]
    assert saw["cancelled"]["status"] == "cancelled"
    assert saw["unknown"]["code"] == -32602
