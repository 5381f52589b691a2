"""Agent loops end to end: an agent (the test, through the in-memory MCP client) creates tasks,
reads what their runs did, and reacts by patching, pausing or waking itself up later, while a
real loopback HTTP server plays the endpoints the tasks call and the callbacks they post."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, types

from support.loopback import CONFIG, Loop, Receiver, loop_settings, open_loop, real_time_clock
from wakecall.server import build_server, open_runtime


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _spacing(task: dict[str, Any]) -> set[timedelta]:
    fires = [_at(f["utc"]) for f in task["next_fires"]]
    return {b - a for a, b in pairwise(fires)}


async def _runs(loop: Loop, task_id: str) -> list[dict[str, Any]]:
    runs = (await loop.call("list_runs", task_id=task_id, limit=100))["runs"]
    return sorted(runs, key=lambda r: r["scheduled_for"])


async def test_an_agent_polls_faster_while_an_endpoint_fails_and_backs_off_once_it_recovers(
    loop: Loop, receiver: Receiver
) -> None:
    receiver.replies["/flaky"] = [(500, {"error": "down"})] * 3 + [(200, {"ok": True})]
    task = await loop.call(
        "create_task",
        name="watch flaky",
        schedule="@every 60s",
        action={"type": "webhook", "url": receiver.url("/flaky")},
    )
    assert _spacing(task) == {timedelta(seconds=60)}

    await loop.step(timedelta(seconds=60))
    (failed,) = await loop.new_events()
    assert failed["type"] == "task.run.failed" and failed["task_id"] == task["id"]
    assert failed["payload"]["run"]["output"]["status"] == 500

    # The agent reacts to the failure: poll every 10s until the endpoint is back.
    patched_at = loop.clock.now()
    fast = await loop.call("patch_schedule", task_id=task["id"], schedule="@every 10s")
    assert _spacing(fast) == {timedelta(seconds=10)}
    first_fast = _at(fast["next_fires"][0]["utc"])
    assert patched_at < first_fast <= patched_at + timedelta(seconds=10)

    seen = ["task.run.failed"]
    completed = None
    for _ in range(6):
        await loop.step(timedelta(seconds=10))
        for event in await loop.new_events():
            seen.append(event["type"])
            if event["type"] == "task.run.completed":
                completed = event
        if completed is not None:
            break
    assert completed is not None
    assert completed["payload"]["run"]["output"]["body"] == {"ok": True}
    assert seen == ["task.run.failed"] * 3 + ["task.run.completed"]

    # Recovered: back to the baseline.
    recovered_at = loop.clock.now()
    slow = await loop.call("patch_schedule", task_id=task["id"], schedule="@every 60s")
    assert _spacing(slow) == {timedelta(seconds=60)}
    assert _at(slow["next_fires"][0]["utc"]) > recovered_at + timedelta(seconds=10)
    await loop.step(timedelta(seconds=60))
    assert [e["type"] for e in await loop.new_events()] == ["task.run.completed"]

    runs = await _runs(loop, task["id"])
    assert [r["status"] for r in runs] == ["failure"] * 3 + ["success"] * 2
    times = [_at(r["scheduled_for"]) for r in runs]
    gaps = [b - a for a, b in pairwise(times)]
    assert gaps[1:3] == [timedelta(seconds=10)] * 2  # the fast runs
    assert gaps[3] == timedelta(seconds=60)  # back to the baseline
    assert receiver.calls["/flaky"] == 5


async def test_an_agent_pauses_a_follow_up_once_its_output_says_done(
    loop: Loop, receiver: Receiver
) -> None:
    receiver.replies["/progress"] = [(200, {"done": False}), (200, {"done": True})]
    task = await loop.call(
        "create_task",
        name="await the migration",
        schedule="@every 30s",
        action={"type": "webhook", "url": receiver.url("/progress")},
    )
    outputs: list[Any] = []
    for _ in range(4):
        await loop.step(timedelta(seconds=30))
        (latest, *_) = (await loop.call("list_runs", task_id=task["id"]))["runs"]
        assert latest["status"] == "success"
        outputs.append(latest["output"]["body"])
        if latest["output"]["body"]["done"]:
            paused = await loop.call("pause", task_id=task["id"], note="migration finished")
            break
    assert outputs == [{"done": False}, {"done": True}]
    assert paused["status"] == "paused" and paused["next_fires"] == []

    await loop.step(timedelta(seconds=120))
    assert len((await loop.call("list_runs", task_id=task["id"]))["runs"]) == 2
    assert receiver.calls["/progress"] == 2
    events = await loop.new_events()
    assert [e["type"] for e in events] == ["task.run.completed"] * 2


async def test_a_task_with_max_runs_ends_by_itself_and_its_callback_says_so(
    loop: Loop, receiver: Receiver
) -> None:
    task = await loop.call(
        "create_task",
        name="twice",
        schedule="@every 30s",
        action={"type": "noop"},
        max_runs=2,
        callback_url=receiver.url(),
    )
    receiver.secrets.append(task["callback_secret"])
    await loop.step(timedelta(seconds=30))
    await loop.step(timedelta(seconds=30))
    await loop.step(timedelta(seconds=60))  # nothing more fires

    events = await loop.new_events()
    assert [e["type"] for e in events] == ["task.run.completed"] * 2 + ["task.expired"]
    assert events[-1]["payload"]["reason"] == "max_runs_reached"
    ended = await loop.call("get_task", task_id=task["id"])
    assert ended["status"] == "expired" and ended["end_reason"] == "max_runs_reached"
    assert ended["next_fires"] == [] and ended["run_count"] == 2
    with anyio.fail_after(10):
        await receiver.wait_for(lambda: len(receiver.bodies) == 3)
    # Callbacks are sent concurrently, so they may arrive in any order (the events' order is
    # the inbox's, checked above).
    assert (
        sorted(b["event"] for b in receiver.bodies) == ["task.expired"] + ["task.run.completed"] * 2
    )
    (expired,) = [b for b in receiver.bodies if b["event"] == "task.expired"]
    assert expired["task"]["id"] == task["id"]
    assert expired["reason"] == "max_runs_reached"


@dataclass
class Pushes:
    logs: list[types.LoggingMessageNotificationParams] = field(default_factory=list)
    changed: anyio.Event = field(default_factory=anyio.Event)

    async def logging_callback(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append(params)
        self.changed.set()
        self.changed = anyio.Event()

    async def message_handler(self, message: Any) -> None:
        if isinstance(message, Exception):
            raise message

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [
            p.data
            for p in self.logs
            if isinstance(p.data, dict) and p.data.get("event") == event_type
        ]

    async def wait_for(self, event_type: str) -> list[dict[str, Any]]:
        while not self.of(event_type):
            await self.changed.wait()
        return self.of(event_type)


async def test_a_wakeup_scheduled_before_a_restart_fires_after_it_and_reaches_the_agent(
    tmp_path: Path,
) -> None:
    clock = real_time_clock()
    context = {"pr": 7}
    with anyio.fail_after(30):
        async with open_loop(tmp_path, clock) as loop:
            receipt = await loop.call(
                "schedule_wakeup", **{"in": "30s"}, reason="check the deploy", context=context
            )
            assert receipt["created"] and not receipt["clamped"]
            due = _at(receipt["scheduled_for"])
            assert due == clock.now() + timedelta(seconds=30)
            await loop.step(timedelta(seconds=10))
            assert (await loop.new_events()) == []
        # The server is down for a moment, then back on the same store.
        clock.advance(timedelta(seconds=5))
        pushes = Pushes()
        async with open_runtime(loop_settings(tmp_path), clock=clock, config=CONFIG) as rt:
            async with Client(
                build_server(rt),
                mode="legacy",
                logging_callback=pushes.logging_callback,
                message_handler=pushes.message_handler,
            ) as listener:
                await listener.list_tools()
                assert len(rt.registry) == 1  # registered for pushes
                async with Client(build_server(rt)) as client:
                    loop = Loop(rt, client, clock)
                    waiting = await loop.call("list_tasks", kind="wakeup")
                    assert [t["id"] for t in waiting["tasks"]] == [receipt["wakeup_id"]]
                    await loop.step(due - clock.now())
                    (event,) = await loop.new_events()
                    assert event["type"] == "wakeup.fired"
                    assert event["task_id"] == receipt["wakeup_id"]
                    assert event["payload"]["wakeup"] == {
                        "reason": "check the deploy",
                        "context": context,
                    }
                (pushed,) = await pushes.wait_for("wakeup.fired")
    assert pushed["cursor"] == event["cursor"]
    assert pushed["wakeup"] == {"reason": "check the deploy", "context": context}
    assert pushed["task"]["id"] == receipt["wakeup_id"]
