"""`pause_after_failures`: a task pauses itself after N failed runs in a row, on both stores,
driven by the fake clock. A run counts once its retries are spent and it ended as a failure or a
timeout; a success ends the streak; a skipped run neither counts nor ends it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
import anyio.lowlevel
import pytest

from wakecall.actions import WakeupExecutor
from wakecall.engine import Engine, EngineConfig, TaskService
from wakecall.models import (
    PAUSED_BY_FAILURES,
    EventType,
    NoopAction,
    RetryPolicy,
    Run,
    RunStatus,
    Task,
    TaskPatch,
    TaskSpec,
    TaskStatus,
)
from wakecall.store import Store
from wakecall.testing import FakeClock, ScriptedExecutor, run_until_idle, service_for, step_to

OWNER = "alice"
START = datetime(2026, 3, 2, 12, tzinfo=UTC)
#: Two attempts a run, 10 s apart: a run fails only when both do.
TWICE = RetryPolicy(attempts=2, backoff="none", delay="10s", jitter=False)


@dataclass
class Rig:
    engine: Engine
    clock: FakeClock
    store: Store
    action: ScriptedExecutor
    tasks: TaskService

    async def runs(self, task_id: str) -> list[Run]:
        return list(reversed(await self.store.list_runs(None, task_id=task_id)))

    async def task(self, task_id: str) -> Task:
        return await self.store.get_task(OWNER, task_id)

    async def events(self) -> list[EventType]:
        return [e.type for e in await self.store.list_events(OWNER)]

    async def at(self, minutes: float) -> None:
        await step_to(self.engine, self.clock, START + timedelta(minutes=minutes))

    async def settle(self) -> None:
        """Until the loop sleeps again, runs possibly still held by the action."""
        await anyio.lowlevel.checkpoint()
        await self.engine.wait_until(self.engine.is_settled)


@pytest.fixture
async def rig(store: Store) -> AsyncIterator[Rig]:
    config = EngineConfig(
        node_id="node-a",
        poll_interval=timedelta(hours=1),
        prune_every=timedelta(days=1),
        heartbeat_timeout=None,
    )
    clock = FakeClock(START)
    action = ScriptedExecutor()
    executors = {"noop": action, "wakeup": WakeupExecutor()}
    with anyio.fail_after(30):
        async with Engine(store, clock=clock, config=config, executors=executors) as engine:
            await run_until_idle(engine)
            yield Rig(engine, clock, store, action, service_for(engine))


def spec(schedule: str = "@every 1m", **kw: object) -> TaskSpec:
    return TaskSpec(name="sync", schedule=schedule, action=NoopAction(), **kw)  # type: ignore[arg-type]


async def test_n_failed_runs_in_a_row_pause_the_task_with_a_note_naming_them(rig: Rig) -> None:
    # Run 1 fails; run 2 fails once, then succeeds on its retry (it ends the streak); runs 3,
    # 4 and 5 fail with their retries spent.
    rig.action.script = ["down", "down", "flaky", "ok", "down 3", "down 3"]
    rig.action.script += ["down 4", "down 4", "down 5", "still down"]
    task = (await rig.tasks.create(OWNER, spec(retry=TWICE, pause_after_failures=3))).task
    assert task.pause_after_failures == 3 and task.failure_streak == ()

    await rig.at(2.5)
    first, second = await rig.runs(task.id)
    assert (first.status, second.status) == (RunStatus.FAILURE, RunStatus.SUCCESS)
    assert (await rig.task(task.id)).failure_streak == ()  # the success ended the streak

    await rig.at(4.5)
    two = tuple(r.id for r in (await rig.runs(task.id))[2:4])
    assert (await rig.task(task.id)).failure_streak == two
    assert (await rig.task(task.id)).status == TaskStatus.ACTIVE

    await rig.at(5.5)
    runs = await rig.runs(task.id)
    failed = [r.id for r in runs[2:5]]
    assert [r.status for r in runs[2:5]] == [RunStatus.FAILURE] * 3
    paused = await rig.task(task.id)
    assert paused.status == TaskStatus.PAUSED and paused.next_fire_at is None
    assert paused.failure_streak == tuple(failed)
    note = paused.pause_note or ""
    assert note.startswith(f"paused after 3 failed runs in a row: {', '.join(failed)}")
    assert "the last said: still down" in note and "resume the task" in note
    assert await rig.events() == [
        EventType.RUN_FAILED,
        EventType.RUN_COMPLETED,
        EventType.RUN_FAILED,
        EventType.RUN_FAILED,
        EventType.RUN_FAILED,
        EventType.TASK_PAUSED,
    ]
    event = (await rig.store.list_events(OWNER))[-1]
    assert event.task_id == task.id and event.run_id is None
    assert event.payload["reason"] == PAUSED_BY_FAILURES
    assert event.payload["failedRuns"] == failed and event.payload["note"] == note
    assert event.created_at == runs[4].finished_at

    await rig.at(30)  # paused: no more fires
    assert len(await rig.runs(task.id)) == 5


async def test_timeouts_count_and_resume_starts_the_count_afresh(rig: Rig) -> None:
    rig.action.hold = True
    task = (await rig.tasks.create(OWNER, spec(timeout="5s", pause_after_failures=2))).task
    for minute in (1, 2):
        rig.clock.set(START + timedelta(minutes=minute))
        await rig.action.wait_for(lambda a: a.active == 1)
        await rig.settle()
        rig.clock.advance(timedelta(seconds=5))
        await rig.action.wait_for(lambda a: a.active == 0)
        await run_until_idle(rig.engine)
    runs = await rig.runs(task.id)
    assert [r.status for r in runs] == [RunStatus.TIMEOUT] * 2
    paused = await rig.task(task.id)
    assert paused.status == TaskStatus.PAUSED
    assert paused.failure_streak == tuple(r.id for r in runs)
    assert "longer than 5s" in (paused.pause_note or "")

    resumed = await rig.tasks.resume(OWNER, task.id)
    assert resumed.status == TaskStatus.ACTIVE and resumed.failure_streak == ()
    assert resumed.pause_note is None and resumed.pause_after_failures == 2
    rig.clock.set(resumed.next_fire_at or START)
    await rig.action.wait_for(lambda a: a.active == 1)
    await rig.settle()
    rig.clock.advance(timedelta(seconds=5))
    await rig.action.wait_for(lambda a: a.active == 0)
    await run_until_idle(rig.engine)
    again = await rig.task(task.id)
    assert again.status == TaskStatus.ACTIVE and len(again.failure_streak) == 1
    assert (await rig.events()).count(EventType.TASK_PAUSED) == 1


async def test_a_skipped_run_neither_counts_nor_ends_the_streak(rig: Rig) -> None:
    rig.action.hold = True
    rig.action.script = ["first", "second"]
    task = (await rig.tasks.create(OWNER, spec(pause_after_failures=2))).task
    rig.clock.set(START + timedelta(minutes=1))
    await rig.action.wait_for(lambda a: a.active == 1)
    rig.action.release()
    await run_until_idle(rig.engine)
    rig.clock.set(START + timedelta(minutes=2))
    await rig.action.wait_for(lambda a: a.active == 1)
    await rig.settle()
    rig.clock.set(START + timedelta(minutes=3))  # run 2 still running: this fire is skipped
    await rig.settle()
    first, second, skipped = await rig.runs(task.id)
    assert skipped.status == RunStatus.SKIPPED
    assert (await rig.task(task.id)).failure_streak == (first.id,)
    rig.action.release()
    await run_until_idle(rig.engine)
    paused = await rig.task(task.id)
    assert paused.status == TaskStatus.PAUSED
    assert paused.failure_streak == (first.id, second.id)
    assert skipped.id not in (paused.pause_note or "")


async def test_manual_runs_count_and_a_paused_task_is_not_paused_twice(rig: Rig) -> None:
    rig.action.script = ["no", "no", "no"]
    task = (await rig.tasks.create(OWNER, spec("0 0 1 1 *", pause_after_failures=2))).task
    ran = [(await rig.tasks.run_now(OWNER, task.id)).id for _ in range(2)]
    await run_until_idle(rig.engine)
    paused = await rig.task(task.id)
    assert paused.status == TaskStatus.PAUSED and paused.failure_streak == tuple(ran)
    # A run of a paused task (run_now still runs it) keeps the last N, with no second event.
    third = (await rig.tasks.run_now(OWNER, task.id)).id
    await run_until_idle(rig.engine)
    again = await rig.task(task.id)
    assert again.failure_streak == (ran[1], third) and again.pause_note == paused.pause_note
    assert (await rig.events()).count(EventType.TASK_PAUSED) == 1


async def test_a_paused_task_pauses_again_only_after_n_more_failures(rig: Rig) -> None:
    rig.action.script = ["a", "b", "c", "d"]
    task = (await rig.tasks.create(OWNER, spec("0 0 1 1 *", pause_after_failures=1))).task
    await rig.tasks.run_now(OWNER, task.id)
    await run_until_idle(rig.engine)
    assert (await rig.task(task.id)).status == TaskStatus.PAUSED
    await rig.tasks.resume(OWNER, task.id)
    await rig.tasks.run_now(OWNER, task.id)
    await run_until_idle(rig.engine)
    assert (await rig.task(task.id)).status == TaskStatus.PAUSED
    assert (await rig.events()).count(EventType.TASK_PAUSED) == 2


async def test_patching_the_limit_restarts_the_count_and_zero_turns_it_off(rig: Rig) -> None:
    rig.action.script = ["x"] * 5
    task = (await rig.tasks.create(OWNER, spec("0 0 1 1 *", pause_after_failures=2))).task
    await rig.tasks.run_now(OWNER, task.id)
    await run_until_idle(rig.engine)
    assert len((await rig.task(task.id)).failure_streak) == 1

    # A new limit counts from now: one more failure does not reach 2.
    patched = (await rig.tasks.patch(OWNER, task.id, TaskPatch(pause_after_failures=2))).task
    assert patched.failure_streak == () and patched.pause_after_failures == 2
    await rig.tasks.run_now(OWNER, task.id)
    await run_until_idle(rig.engine)
    assert (await rig.task(task.id)).status == TaskStatus.ACTIVE

    # 0 turns it off: failures are no longer counted.
    off = (await rig.tasks.patch(OWNER, task.id, TaskPatch(pause_after_failures=0))).task
    assert off.pause_after_failures is None and off.failure_streak == ()
    for _ in range(3):
        await rig.tasks.run_now(OWNER, task.id)
        await run_until_idle(rig.engine)
    done = await rig.task(task.id)
    assert done.status == TaskStatus.ACTIVE and done.failure_streak == ()
    assert EventType.TASK_PAUSED not in await rig.events()


async def test_an_on_demand_task_paused_by_failures_can_be_resumed(rig: Rig) -> None:
    rig.action.script = ["x"]
    task = (await rig.tasks.create(OWNER, spec("on demand", pause_after_failures=1))).task
    await rig.tasks.run_now(OWNER, task.id)
    await run_until_idle(rig.engine)
    assert (await rig.task(task.id)).status == TaskStatus.PAUSED
    resumed = await rig.tasks.resume(OWNER, task.id)
    assert resumed.status == TaskStatus.ACTIVE and resumed.next_fire_at is None
