"""Finished tasks are pruned once the retention has passed since they ended and their last run
finished, with their runs, on both stores: never a live task, never one with a run unfinished
or finished within the retention, never one another task depends on. Their events stay for
as long as events are kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from support.records import T0, make_task
from wakecall.actions import WakeupExecutor
from wakecall.config import EngineConfig
from wakecall.engine import Engine, TaskService
from wakecall.errors import TaskNotFound
from wakecall.models import EventType, NoopAction, RunStatus, TaskSpec, TaskStatus
from wakecall.store import Store
from wakecall.store.task_writes import NewTask
from wakecall.testing import (
    FakeClock,
    ScriptedExecutor,
    advance_to,
    run_until_idle,
    service_for,
    step_to,
)

OWNER = "alice"
START = datetime(2026, 3, 2, 12, tzinfo=UTC)
KEPT = timedelta(days=2)
ENDED = START + timedelta(minutes=1)


@dataclass
class Rig:
    engine: Engine
    clock: FakeClock
    store: Store
    action: ScriptedExecutor

    @property
    def tasks(self) -> TaskService:
        return service_for(self.engine)

    async def exists(self, task_id: str) -> bool:
        try:
            await self.store.get_task(OWNER, task_id)
        except TaskNotFound:
            return False
        return True

    async def prune(self, now: datetime) -> int:
        counts = await self.store.prune(
            now,
            runs_per_task=100,
            run_max_age=timedelta(days=30),
            event_max_age=timedelta(days=7),
            task_max_age=KEPT,
        )
        return counts.tasks


@pytest.fixture
async def rig(store: Store) -> AsyncIterator[Rig]:
    config = EngineConfig(
        node_id="node-a",
        poll_interval=timedelta(hours=1),
        prune_every=timedelta(hours=1),
        heartbeat_timeout=None,
        task_max_age=KEPT,
    )
    clock = FakeClock(START)
    action = ScriptedExecutor()
    executors = {"noop": action, "wakeup": WakeupExecutor()}
    with anyio.fail_after(30):
        async with Engine(store, clock=clock, config=config, executors=executors) as engine:
            await run_until_idle(engine)
            yield Rig(engine, clock, store, action)


def once(name: str = "job") -> TaskSpec:
    return TaskSpec(name=name, schedule="in 1m", action=NoopAction())


async def test_a_finished_task_goes_with_its_runs_just_past_the_retention(rig: Rig) -> None:
    wakeup = (await rig.tasks.schedule_wakeup(OWNER, delay="1m", reason="look again")).task
    job = (await rig.tasks.create(OWNER, once())).task
    await step_to(rig.engine, rig.clock, ENDED)
    for task_id in (wakeup.id, job.id):
        assert (await rig.store.get_task(OWNER, task_id)).status == TaskStatus.COMPLETED
    assert await rig.prune(ENDED + KEPT) == 0  # exactly the retention: kept
    assert await rig.exists(job.id) and await rig.exists(wakeup.id)
    assert await rig.prune(ENDED + KEPT + timedelta(microseconds=1)) == 2
    assert not await rig.exists(job.id) and not await rig.exists(wakeup.id)
    assert await rig.store.list_runs(OWNER) == []
    # What the agent was told stays readable for as long as events are kept.
    told = {e.type for e in await rig.store.list_events(OWNER)}
    assert told == {EventType.WAKEUP_FIRED, EventType.RUN_COMPLETED}


async def test_the_engine_prunes_them_itself_and_never_a_live_task(rig: Rig) -> None:
    job = (await rig.tasks.create(OWNER, once())).task
    paused = (await rig.tasks.create(OWNER, TaskSpec(name="daily", schedule="@daily"))).task
    await rig.tasks.pause(OWNER, paused.id)
    await step_to(rig.engine, rig.clock, ENDED)
    await advance_to(rig.engine, rig.clock, ENDED + KEPT + timedelta(hours=2))
    assert not await rig.exists(job.id)
    assert [t.id for t in await rig.store.list_tasks(OWNER)] == [paused.id]


async def test_a_run_unfinished_or_finished_lately_keeps_its_task(rig: Rig) -> None:
    rig.action.hold = True
    job = (await rig.tasks.create(OWNER, once())).task
    rig.clock.set(ENDED)
    await rig.engine.wait_until(lambda: rig.action.active == 1 and rig.engine.is_settled())
    assert (await rig.store.get_task(OWNER, job.id)).status == TaskStatus.COMPLETED
    late = ENDED + KEPT + timedelta(days=1)
    rig.clock.set(late)  # the engine prunes meanwhile, the run still running
    await rig.engine.wait_until(rig.engine.is_settled)
    (run,) = await rig.store.list_runs(OWNER, task_id=job.id)
    assert run.status == RunStatus.RUNNING
    rig.action.release()
    await run_until_idle(rig.engine)
    assert await rig.prune(late + KEPT) == 0  # its run finished within the retention
    assert await rig.prune(late + KEPT + timedelta(microseconds=1)) == 1
    assert not await rig.exists(job.id)


async def test_a_task_others_depend_on_is_kept_until_they_are_gone(rig: Rig) -> None:
    upstream = (await rig.tasks.create(OWNER, once("extract"))).task
    downstream = TaskSpec(name="load", depends_on=upstream.id, action=NoopAction())
    chained = (await rig.tasks.create(OWNER, downstream)).task
    await step_to(rig.engine, rig.clock, ENDED)
    assert [r.status for r in await rig.store.list_runs(OWNER, task_id=chained.id)] == [
        RunStatus.SUCCESS
    ]
    later = ENDED + KEPT + timedelta(days=1)
    assert await rig.prune(later) == 0
    assert await rig.exists(upstream.id) and await rig.exists(chained.id)
    await rig.tasks.delete(OWNER, chained.id)
    assert await rig.prune(later) == 1
    assert not await rig.exists(upstream.id)


async def test_many_finished_tasks_go_in_chunks_and_the_live_ones_stay(store: Store) -> None:
    finished = [
        make_task(OWNER, status=TaskStatus.COMPLETED, next_fire_at=None) for _ in range(1_300)
    ]
    live = [make_task(OWNER) for _ in range(3)]
    await store.write_tasks(OWNER, [NewTask(t) for t in [*finished, *live]], T0)
    assert len(await store.list_tasks(OWNER, limit=2_000)) == 1_303
    counts = await store.prune(
        T0 + KEPT + timedelta(seconds=1),
        runs_per_task=100,
        run_max_age=timedelta(days=30),
        event_max_age=timedelta(days=7),
        task_max_age=KEPT,
    )
    assert counts.tasks == 1_300
    assert {t.id for t in await store.list_tasks(OWNER, limit=2_000)} == {t.id for t in live}
