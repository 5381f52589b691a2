"""A laptop that sleeps: attempt time limits and heartbeats read the wall clock, so after a
suspend every attempt in flight was recorded `timeout` (or cancelled as stale with
`kill_stale`) though it had barely run; and a wakeup that came due more than the catch-up
window before the machine woke was recorded `missed`: the agent got `task.run.missed` instead
of the `wakeup.fired` it asked for, and its callback got nothing.

Now time limits and heartbeats measure elapsed time (`Clock.monotonic`, which a suspend does
not move; `FakeClock.suspend` moves the wall clock alone), a node that wakes renews its leases
before it could reap its own runs, a wakeup always fires (late, and saying how late), and
missed runs are posted to the task's callback like its other run events.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from support.loopback import Loop, Receiver, open_loop, serve_receiver
from wakecall.actions import WakeupExecutor
from wakecall.engine import Engine, EngineConfig
from wakecall.models import (
    AttemptStatus,
    EventType,
    NoopAction,
    RunStatus,
    TaskPatch,
    TaskSpec,
    Trigger,
)
from wakecall.store import SQLiteStore, Store
from wakecall.testing import FakeClock, ScriptedExecutor, advance, run_until_idle, service_for

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
OWNER = "alice"
LEASE = timedelta(seconds=30)
#: Longer than the default catch-up window (1 h): what used to make a wakeup `missed`.
NIGHT = timedelta(hours=2)


@dataclass
class Rig:
    engine: Engine
    clock: FakeClock
    store: SQLiteStore
    action: ScriptedExecutor

    async def only_run(self, task_id: str) -> Any:
        (run,) = await self.store.list_runs(None, task_id=task_id)
        return run

    async def events(self) -> list[EventType]:
        return [e.type for e in await self.store.list_events(OWNER)]

    async def settle(self) -> None:
        """Wait until the loop sleeps again, with runs possibly still held by the action."""
        await anyio.lowlevel.checkpoint()
        await self.engine.wait_until(self.engine.is_settled)

    async def start_held(self, **spec: Any) -> str:
        """A task whose one run is executing (held by the action) when this returns."""
        self.action.hold = True
        task = (
            await service_for(self.engine).create(
                OWNER, TaskSpec(name="held", schedule="in 1m", action=NoopAction(), **spec)
            )
        ).task
        self.clock.advance(timedelta(minutes=1))
        await self.action.wait_for(lambda a: a.active == 1)
        await self.settle()
        return task.id


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    store = SQLiteStore(tmp_path / "w.db")
    await store.open()
    clock = FakeClock(START)
    action = ScriptedExecutor()
    config = EngineConfig(
        node_id="node-a",
        lease=LEASE,
        heartbeat_timeout=timedelta(minutes=5),
        kill_stale=True,
        poll_interval=timedelta(hours=1),
        prune_every=timedelta(days=1),
    )
    executors = {"noop": action, "wakeup": WakeupExecutor()}
    try:
        with anyio.fail_after(20):
            async with Engine(store, clock=clock, config=config, executors=executors) as engine:
                await run_until_idle(engine)
                yield Rig(engine, clock, store, action)
    finally:
        await store.close()


# --- attempts in flight -------------------------------------------------------------------
async def test_an_attempt_that_ran_2s_before_a_2h_sleep_is_not_a_timeout(rig: Rig) -> None:
    task_id = await rig.start_held(timeout="30s")
    rig.clock.advance(timedelta(seconds=2))
    rig.clock.suspend(NIGHT)
    await rig.settle()
    run = await rig.only_run(task_id)
    assert run.status == RunStatus.RUNNING and rig.action.cancelled == 0
    assert await rig.events() == []
    # The limit counts the time the attempt ran: 2 s before the night, 27 s after it.
    await advance_held(rig, timedelta(seconds=27))
    assert (await rig.only_run(task_id)).status == RunStatus.RUNNING
    await advance(rig.engine, rig.clock, timedelta(seconds=1))
    run = await rig.only_run(task_id)
    assert run.status == RunStatus.TIMEOUT and "longer than 30s" in (run.error_message or "")
    assert run.duration_ms == 30_000  # elapsed time, not the night


async def test_a_sleep_does_not_make_a_run_silent_for_its_heartbeat(rig: Rig) -> None:
    task_id = await rig.start_held()
    rig.clock.advance(timedelta(minutes=1))
    rig.clock.suspend(NIGHT)
    await rig.settle()
    assert await rig.events() == []  # not stale, so not cancelled either (kill_stale)
    assert (await rig.only_run(task_id)).status == RunStatus.RUNNING
    # Five minutes of elapsed silence in all: now it is stale, and killed.
    await advance_held(rig, timedelta(minutes=4))
    await rig.action.wait_for(lambda a: a.active == 0)
    await run_until_idle(rig.engine)
    events = await rig.store.list_events(OWNER)
    assert [e.type for e in events] == [EventType.RUN_STALE, EventType.RUN_FAILED]
    assert events[0].payload["heartbeat"]["silentS"] == 300
    assert rig.action.cancelled == 1


async def test_a_node_that_wakes_renews_its_leases_before_it_could_reap_its_own_runs(
    rig: Rig,
) -> None:
    task_id = await rig.start_held()
    lease_before = (await rig.only_run(task_id)).lease_expires_at
    rig.clock.suspend(NIGHT)  # every lease of the node expired by the wall clock
    await rig.settle()
    run = await rig.only_run(task_id)
    assert run.status == RunStatus.RUNNING and run.claimed_by == "node-a"
    assert run.lease_expires_at == rig.clock.now() + LEASE > lease_before
    (attempt,) = await rig.store.list_attempts(None, run.id)
    assert attempt.status == AttemptStatus.RUNNING  # not reaped as interrupted
    rig.action.release()
    await run_until_idle(rig.engine)
    run = await rig.only_run(task_id)
    assert run.status == RunStatus.SUCCESS and run.attempt == 1
    assert await rig.events() == [EventType.RUN_COMPLETED]


async def advance_held(rig: Rig, delta: timedelta) -> None:
    rig.clock.advance(delta)
    await rig.settle()


# --- wakeups ------------------------------------------------------------------------------
async def test_a_wakeup_due_while_the_machine_slept_fires_once_late_and_says_so(
    rig: Rig,
) -> None:
    receipt = await service_for(rig.engine).schedule_wakeup(
        OWNER, delay="1m", reason="check the deploy"
    )
    rig.clock.suspend(NIGHT + timedelta(minutes=2))  # woke 2 h 1 min after the wakeup's time
    await run_until_idle(rig.engine)
    run = await rig.only_run(receipt.task.id)
    assert run.status == RunStatus.SUCCESS and run.trigger == Trigger.WAKEUP
    (event,) = await rig.store.list_events(OWNER)
    assert event.type == EventType.WAKEUP_FIRED
    assert event.payload["late"] == {"byS": 7260.0, "reason": "catchup"}
    assert event.payload["wakeup"]["reason"] == "check the deploy"
    assert event.payload["run"]["scheduledFor"] == "2026-01-05T12:01:00Z"
    await advance(rig.engine, rig.clock, timedelta(days=1))
    assert await rig.events() == [EventType.WAKEUP_FIRED]  # once
    assert len(await rig.store.list_runs(None, task_id=receipt.task.id)) == 1


async def test_a_wakeup_on_time_is_not_late(rig: Rig) -> None:
    await service_for(rig.engine).schedule_wakeup(OWNER, delay="1m")
    await advance(rig.engine, rig.clock, timedelta(minutes=1))
    (event,) = await rig.store.list_events(OWNER)
    assert event.type == EventType.WAKEUP_FIRED and event.payload["late"] is None


# --- callbacks ----------------------------------------------------------------------------
async def test_every_store_queues_the_callbacks_of_a_missed_run_and_a_late_wakeup(
    store: Store,
) -> None:
    clock = FakeClock(START)
    config = EngineConfig(node_id="node-a", poll_interval=timedelta(hours=1))
    hook = "https://app.example.com/hook"
    with anyio.fail_after(20):
        async with Engine(store, clock=clock, config=config) as engine:
            await run_until_idle(engine)
            task = (
                await service_for(engine).create(
                    OWNER,
                    TaskSpec(
                        name="report", schedule="in 1m", action=NoopAction(), callback_url=hook
                    ),
                )
            ).task
            wakeup = (await service_for(engine).schedule_wakeup(OWNER, delay="1m")).task
            await service_for(engine).patch(OWNER, wakeup.id, TaskPatch(callback_url=hook))
            clock.suspend(NIGHT + timedelta(minutes=2))
            await run_until_idle(engine)
    sent = {d.task_id: d for d in await store.list_deliveries(OWNER)}
    assert sent.keys() == {task.id, wakeup.id} and {d.url for d in sent.values()} == {hook}
    missed = json.loads(sent[task.id].body)
    assert (missed["event"], missed["run"]["status"]) == ("task.run.missed", "missed")
    fired = json.loads(sent[wakeup.id].body)
    assert fired["event"] == "wakeup.fired"
    assert fired["late"] == {"byS": 7260.0, "reason": "catchup"}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serve_receiver() as rec:
        yield rec


@pytest.fixture
async def loop(tmp_path: Path) -> AsyncIterator[Loop]:
    # The receiver checks each callback's timestamp against the real time: the night ends now.
    evening = datetime.now(UTC).replace(microsecond=0) - NIGHT - timedelta(minutes=2)
    with anyio.fail_after(30):
        async with open_loop(tmp_path, FakeClock(evening)) as agent:
            yield agent


async def sleep_through_the_night(loop: Loop, receiver: Receiver) -> dict[str, Any]:
    loop.clock.suspend(NIGHT + timedelta(minutes=2))
    with anyio.fail_after(10):
        await loop.settle()
        await receiver.wait_for(lambda: receiver.bodies)
    (body,) = receiver.bodies
    return body


async def test_a_missed_run_is_posted_to_the_callback(loop: Loop, receiver: Receiver) -> None:
    task = await loop.call(
        "create_task",
        name="report",
        schedule="in 1m",
        action={"type": "noop"},
        callback_url=receiver.url(),
    )
    receiver.secrets.append(task["callback_secret"])
    body = await sleep_through_the_night(loop, receiver)
    assert body["event"] == "task.run.missed"
    assert body["task"]["id"] == task["id"]
    assert body["run"]["status"] == "missed"
    assert body["run"]["errorMessage"].startswith("missed: 1 fire(s) due at ")
    assert receiver.attempts[0]["x-wakecall-event"] == "task.run.missed"


async def test_a_late_wakeups_callback_says_how_late(loop: Loop, receiver: Receiver) -> None:
    wakeup = await loop.call("schedule_wakeup", **{"in": "1m", "reason": "check the deploy"})
    task_id = wakeup["wakeup_id"]
    patched = await loop.call("patch_schedule", task_id=task_id, callback_url=receiver.url())
    receiver.secrets.append(patched["callback_secret"])
    body = await sleep_through_the_night(loop, receiver)
    assert body["event"] == "wakeup.fired"
    assert body["late"] == {"byS": 7260.0, "reason": "catchup"}
    assert body["wakeup"]["reason"] == "check the deploy"
    events = [e["type"] for e in await loop.new_events()]
    assert events == ["wakeup.fired"]
