"""Signed webhook callbacks to a real HTTP receiver on loopback, driven by a fake clock."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

from support.loopback import Loop, Receiver, open_loop, real_time_clock


async def _create(loop: Loop, receiver: Receiver, **extra: Any) -> dict[str, Any]:
    task = await loop.call(
        "create_task",
        name="report",
        schedule="in 1m",
        action={"type": "noop"},
        callback_url=receiver.url(extra.pop("path", "/hook")),
        metadata={"customer": "acme"},
        expires_at="2099-06-01T00:00:00Z",
        **extra,
    )
    assert task["callback_secret"].startswith("whsec_")
    receiver.secrets.append(task["callback_secret"])
    return task


async def test_a_run_result_is_posted_signed_with_every_field_filled(
    loop: Loop, receiver: Receiver
) -> None:
    task = await _create(loop, receiver)
    await loop.step(timedelta(minutes=1))
    with anyio.fail_after(10):
        await receiver.wait_for(lambda: receiver.bodies)
    (body,) = receiver.bodies
    assert body["event"] == "task.run.completed" and body["timestamp"]
    assert body["task"] == {"id": task["id"], "name": "report", "metadata": {"customer": "acme"}}
    run = body["run"]
    assert run["status"] == "success" and run["attempt"] == 1 and run["durationMs"] is not None
    assert set(run) >= {"id", "status", "output", "errorMessage", "durationMs", "attempt"}
    assert body["stats"] == {
        "totalRuns": 1,
        "remainingRuns": None,
        "expiresAt": "2099-06-01T00:00:00Z",
    }
    assert "reason" in body
    headers = receiver.attempts[0]
    assert headers["x-wakecall-event"] == "task.run.completed"
    assert headers["webhook-id"].startswith("msg_")
    (delivery,) = (await loop.call("list_deliveries"))["deliveries"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1


async def test_a_500_then_200_is_one_delivery_with_the_same_webhook_id(
    loop: Loop, receiver: Receiver
) -> None:
    receiver.script = [500]
    await _create(loop, receiver)
    await loop.step(timedelta(minutes=1))
    with anyio.fail_after(10):
        await receiver.wait_for(lambda: len(receiver.attempts) == 1)
        await loop.settle()
    (pending,) = (await loop.call("list_deliveries"))["deliveries"]
    assert pending["status"] == "pending" and pending["last_status"] == 500
    await loop.step(timedelta(seconds=6))  # the first retry waits 5s (+ up to 10% jitter)
    with anyio.fail_after(10):
        await receiver.wait_for(lambda: receiver.bodies)
        await loop.settle()
    first, second = receiver.attempts
    assert first["webhook-id"] == second["webhook-id"]
    assert len(receiver.stored_runs) == 1
    (done,) = (await loop.call("list_deliveries"))["deliveries"]
    assert done["status"] == "delivered" and done["attempts"] == 2


async def test_retry_after_is_honoured(loop: Loop, receiver: Receiver) -> None:
    receiver.script = [503]
    receiver.headers[503] = {"Retry-After": "120"}
    await _create(loop, receiver)
    await loop.step(timedelta(minutes=1))
    with anyio.fail_after(10):
        await receiver.wait_for(lambda: len(receiver.attempts) == 1)
        await loop.settle()
    (pending,) = (await loop.call("list_deliveries"))["deliveries"]
    due = datetime.fromisoformat(pending["next_attempt_at"])
    assert due == loop.clock.now() + timedelta(seconds=120)


async def test_410_stops_retrying_and_redeliver_sends_again(loop: Loop, receiver: Receiver) -> None:
    receiver.script = [410]
    await _create(loop, receiver)
    await loop.step(timedelta(minutes=1))
    with anyio.fail_after(10):
        await receiver.wait_for(lambda: len(receiver.attempts) == 1)
        await loop.settle()
    (failed,) = (await loop.call("list_deliveries", status="failed"))["deliveries"]
    assert "410" in failed["last_error"]
    assert await loop.rt.engine.store.next_delivery_due_at() is None  # nothing to retry
    again = await loop.call("redeliver", delivery_id=failed["id"])
    assert again["status"] == "pending"
    with anyio.fail_after(10):
        await receiver.wait_for(lambda: receiver.bodies)
        await loop.settle()
    assert (await loop.call("list_deliveries", status="delivered"))["deliveries"]


async def test_a_slow_receiver_does_not_hold_up_other_callbacks(
    loop: Loop, receiver: Receiver
) -> None:
    await _create(loop, receiver, path="/slow")
    await _create(loop, receiver)
    await loop.step_engine(timedelta(minutes=1))
    with anyio.fail_after(5):
        # The fast one is verified and stored while the slow one is still held open (the two
        # requests go out together, so either may reach the receiver first).
        await receiver.wait_for(lambda: len(receiver.bodies) == 1 and len(receiver.attempts) == 2)
    assert not receiver.slow_gate.is_set()
    receiver.slow_gate.set()
    with anyio.fail_after(10):
        await receiver.wait_for(lambda: len(receiver.bodies) == 2)
        await loop.settle()


async def test_rotation_signs_with_old_and_new_secret_during_the_grace(
    loop: Loop, receiver: Receiver
) -> None:
    task = await loop.call(
        "create_task",
        name="r",
        schedule="@every 1m",
        action={"type": "noop"},
        callback_url=receiver.url(),
    )
    old = task["callback_secret"]
    rotated = await loop.call("patch_schedule", task_id=task["id"], rotate_callback_secret=True)
    new = rotated["callback_secret"]
    assert new and new != old
    receiver.secrets.append(old)  # a receiver not yet updated still verifies
    await loop.step(timedelta(minutes=1))
    with anyio.fail_after(10):
        await receiver.wait_for(lambda: len(receiver.bodies) == 1)
    assert len(receiver.attempts[0]["webhook-signature"].split()) == 2
    receiver.secrets[:] = [new]
    await loop.step(timedelta(minutes=1))
    with anyio.fail_after(10):
        await receiver.wait_for(lambda: len(receiver.bodies) == 2)
        await loop.settle()


async def test_an_unsafe_callback_url_is_refused(loop: Loop) -> None:
    result = await loop.client.call_tool(
        "create_task",
        {"name": "x", "schedule": "@daily", "callback_url": "http://169.254.169.254/latest"},
    )
    assert result.is_error and "169.254.169.254" in result.content[0].text  # type: ignore[union-attr]


async def test_pending_deliveries_survive_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    clock = real_time_clock()
    receiver.script = [503, 503]
    with anyio.fail_after(30):
        async with open_loop(tmp_path, clock) as loop:
            await _create(loop, receiver)
            await loop.step(timedelta(minutes=1))
            await receiver.wait_for(lambda: len(receiver.attempts) == 1)
            await loop.settle()
        # Down for a while; the receiver recovers meanwhile.
        clock.advance(timedelta(seconds=30))
        receiver.script = []
        async with open_loop(tmp_path, clock) as loop:
            await receiver.wait_for(lambda: receiver.bodies)
            await loop.settle()
            (done,) = (await loop.call("list_deliveries"))["deliveries"]
    assert done["status"] == "delivered" and done["attempts"] == 2
    assert json.loads(json.dumps(receiver.bodies[0]))["event"] == "task.run.completed"
