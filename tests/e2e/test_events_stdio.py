"""The Events extension over stdio through the SDK's client and a real `wakecall serve`
process: the capability in the handshake, a stream whose events arrive as notifications on
stdout, ended by `notifications/cancelled` (the sketch's stdio cancellation)."""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
from mcp import Client

from support.events_client import Notes, request
from support.protocol import INITIALIZE


async def test_the_handshake_advertises_the_events_capability(wakecall: Any) -> None:
    line = json.dumps(INITIALIZE) + "\n"
    with anyio.fail_after(30):
        done = await anyio.run_process(
            [sys.executable, *wakecall.serve_args()],
            input=line.encode(),
            env=wakecall.full_env(),
            check=False,
        )
    answer = json.loads(done.stdout.decode().splitlines()[0])
    capabilities = answer["result"]["capabilities"]
    assert capabilities["events"] == {"listChanged": False}
    # Log notifications on the handshake generation come with its logging capability (on
    # 2026-07-28 there are none outside a request: pushes go through subscriptions/listen).
    assert "logging" in capabilities
    assert {"dev.wakecall/events", "io.modelcontextprotocol/tasks"} <= set(
        capabilities["extensions"]
    )


async def test_a_stream_over_stdio_pushes_events_until_cancelled(wakecall: Any) -> None:
    notes = Notes()
    params = wakecall.stdio_params("--events-heartbeat", "0.1s")
    async with Client(params, extensions=[notes], mode="legacy") as client:
        made = await wakecall.call(
            client,
            "create_task",
            {"name": "job", "schedule": "on demand", "action": {"type": "noop"}},
        )
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                stream = {"name": "task.run.completed", "cursor": None}
                tg.start_soon(request, client, "events/stream", stream)
                await notes.wait_for(lambda: notes.of("notifications/events/active"))
                await wakecall.call(client, "run_now", {"task_id": made["id"]})
                await notes.wait_for(lambda: notes.of("notifications/events/event"))
                await notes.wait_for(lambda: notes.of("notifications/events/heartbeat"))
                tg.cancel_scope.cancel()  # the client sends notifications/cancelled
            beats = len(notes.of("notifications/events/heartbeat"))
            await anyio.sleep(0.35)  # three heartbeats' time: a stream still open would beat
        assert len(notes.of("notifications/events/heartbeat")) == beats
        (event,) = notes.of("notifications/events/event")
        assert event["data"]["task"]["id"] == made["id"]
