"""`pause_after_failures` through the tools, as an agent drives them with the MCP SDK's client:
a webhook action that keeps failing against a real loopback endpoint, a condition that skips a
run between two failures, the `task.paused` event, `get_task`'s answer, resume and patch."""

from __future__ import annotations

from datetime import timedelta

import pytest

from support.loopback import Loop, Receiver


async def test_failed_runs_pause_the_task_and_the_agent_hears_why(
    loop: Loop, receiver: Receiver
) -> None:
    receiver.replies["/flaky"] = [(500, {"error": "upstream down"})]
    receiver.replies["/progress"] = [
        (200, {"proceed": True}),
        (200, {"proceed": False, "reason": "nothing new"}),
        (200, {"proceed": True}),
    ]
    task = await loop.call(
        "create_task",
        name="sync",
        schedule="@every 60s",
        action={"type": "webhook", "url": receiver.url("/flaky")},
        condition={"url": receiver.url("/progress")},
        pause_after_failures=2,
    )
    assert task["pause_after_failures"] == 2 and task["failure_streak"] == []

    for _ in range(3):  # failed, skipped (neither counts nor ends the streak), failed
        await loop.step(timedelta(seconds=60))
    events = await loop.new_events()
    assert [e["type"] for e in events] == [
        "task.run.failed",
        "task.run.skipped",
        "task.run.failed",
        "task.paused",
    ]
    failed = [events[0]["payload"]["run"]["id"], events[2]["payload"]["run"]["id"]]
    paused = events[3]["payload"]
    assert paused["reason"] == "failures" and paused["failedRuns"] == failed
    assert paused["note"].startswith(f"paused after 2 failed runs in a row: {', '.join(failed)}")
    assert "HTTP 500" in paused["note"]

    shown = await loop.call("get_task", task_id=task["id"])
    assert shown["status"] == "paused" and shown["pause_note"] == paused["note"]
    assert shown["failure_streak"] == failed and shown["pause_after_failures"] == 2
    await loop.step(timedelta(minutes=5))
    assert await loop.new_events() == []  # paused: no more fires

    resumed = await loop.call("resume", task_id=task["id"])
    assert resumed["status"] == "active" and resumed["failure_streak"] == []
    off = await loop.call("patch_schedule", task_id=task["id"], pause_after_failures=0)
    assert off["pause_after_failures"] is None
    back = await loop.call("patch_schedule", task_id=task["id"], pause_after_failures=5)
    assert back["pause_after_failures"] == 5


@pytest.mark.parametrize("value", [-1, 101, "3", 2.5])
async def test_a_limit_that_is_not_a_count_up_to_100_is_refused(loop: Loop, value: object) -> None:
    result = await loop.client.call_tool(
        "create_task", {"name": "sync", "schedule": "@daily", "pause_after_failures": value}
    )
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "pause_after_failures" in text
    assert (await loop.call("list_tasks"))["tasks"] == []
