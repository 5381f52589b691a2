"""A task's condition: an HTTP check before each attempt, against a real loopback endpoint."""

from __future__ import annotations

from datetime import timedelta

from support.loopback import Loop, Receiver


async def test_a_run_the_condition_declines_is_skipped_with_the_reason(
    loop: Loop, receiver: Receiver
) -> None:
    receiver.replies["/progress"] = [
        (200, {"proceed": False, "reason": "nothing new upstream"}),
        (200, {"proceed": True}),
    ]
    receiver.replies["/flaky"] = [(200, {"ok": True})]
    task = await loop.call(
        "create_task",
        name="sync",
        schedule="@every 60s",
        action={"type": "webhook", "url": receiver.url("/flaky")},
        condition={"url": receiver.url("/progress")},
    )
    assert task["condition"] == {
        "url": receiver.url("/progress"),
        "method": "POST",
        "timeout": "10s",
    }

    await loop.step(timedelta(seconds=60))
    (skipped,) = await loop.new_events()
    assert skipped["type"] == "task.run.skipped"
    run = skipped["payload"]["run"]
    assert run["status"] == "skipped" and "nothing new upstream" in run["errorMessage"]
    assert receiver.calls == {"/progress": 1}  # the action did not run

    await loop.step(timedelta(seconds=60))
    (completed,) = await loop.new_events()
    assert completed["type"] == "task.run.completed"
    assert receiver.calls == {"/progress": 2, "/flaky": 1}
    runs = (await loop.call("list_runs", task_id=task["id"]))["runs"]
    assert [r["status"] for r in runs] == ["success", "skipped"]


async def test_a_condition_that_cannot_be_checked_fails_the_attempt_and_is_retried(
    loop: Loop, receiver: Receiver
) -> None:
    receiver.replies["/progress"] = [(503, {"error": "busy"}), (200, {})]
    task = await loop.call(
        "create_task",
        name="careful",
        schedule="in 1m",
        action={"type": "noop"},
        retry={"attempts": 2, "delay": "5s", "jitter": False},
        condition={"url": receiver.url("/progress"), "timeout": "2s"},
    )
    await loop.step(timedelta(minutes=1))
    await loop.step(timedelta(seconds=5))
    (completed,) = await loop.new_events()
    assert completed["type"] == "task.run.completed" and completed["payload"]["run"]["attempt"] == 2
    (run,) = (await loop.call("list_runs", task_id=task["id"]))["runs"]
    attempts = await loop.rt.engine.store.list_attempts(None, run["id"])
    assert [a.status for a in attempts] == ["failure", "success"]
    assert "condition check failed: HTTP 503" in (attempts[0].error_message or "")


async def test_a_condition_url_the_guard_refuses_is_refused_before_anything_is_stored(
    loop: Loop,
) -> None:
    result = await loop.client.call_tool(
        "create_task",
        {
            "name": "sneaky",
            "schedule": "@daily",
            "condition": {"url": "http://169.254.169.254/latest/meta-data"},
        },
    )
    assert result.is_error and "condition.url" in result.content[0].text  # type: ignore[union-attr]
    assert (await loop.call("list_tasks"))["tasks"] == []
