"""The engine's lead (`EngineConfig.fire_lead`): a fire is recorded a little before its instant,
and its action starts at the instant itself; runs that end as they are written are never
recorded early."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from wakecall.actions import WakeupExecutor
from wakecall.engine import Engine, EngineConfig, RunNews, TaskService
from wakecall.models import AttemptStatus, RunStatus, TaskSpec
from wakecall.settings import load_settings
from wakecall.store import SQLiteStore
from wakecall.testing import FakeClock, ScriptedExecutor, run_until_idle, service_for

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
FIRE = START + timedelta(seconds=30)
LEAD = timedelta(milliseconds=10)
OWNER = "alice"


def in_30s(name: str = "job", action: str = "noop") -> TaskSpec:
    spec = {"name": name, "schedule": "in 30s", "action": {"type": action}}
    return TaskSpec.model_validate(spec)


class Rig:
    def __init__(self, engine: Engine, clock: FakeClock, store: SQLiteStore) -> None:
        self.engine, self.clock, self.store = engine, clock, store

    @property
    def tasks(self) -> TaskService:
        return service_for(self.engine)

    async def only_run(self, task_id: str):  # type: ignore[no-untyped-def]
        (run,) = await self.store.list_runs(None, task_id=task_id)
        return run

    async def create(self, spec: TaskSpec) -> str:
        task = (await self.tasks.create(OWNER, spec)).task
        await run_until_idle(self.engine)
        return task.id

    async def at(self, instant: datetime) -> None:
        self.clock.set(instant)
        await run_until_idle(self.engine)


async def make_rig(tmp_path: Path, executors: dict, lead: timedelta = LEAD) -> AsyncIterator[Rig]:  # type: ignore[type-arg]
    store = SQLiteStore(tmp_path / "w.db")
    await store.open()
    clock = FakeClock(START)
    config = EngineConfig(
        node_id="node-a",
        poll_interval=timedelta(hours=1),
        prune_every=timedelta(days=1),
        fire_lead=lead,
    )
    try:
        with anyio.fail_after(10):
            async with Engine(store, clock=clock, config=config, executors=executors) as engine:
                await run_until_idle(engine)
                yield Rig(engine, clock, store)
    finally:
        await store.close()


@pytest.fixture
def action() -> ScriptedExecutor:
    return ScriptedExecutor()


@pytest.fixture
async def rig(tmp_path: Path, action: ScriptedExecutor) -> AsyncIterator[Rig]:
    executors = {"noop": action, "wakeup": WakeupExecutor()}  # a wakeup's runs end at birth
    async for made in make_rig(tmp_path, executors):
        yield made


async def test_a_fire_is_recorded_a_lead_ahead_and_its_action_starts_at_its_instant(
    rig: Rig, action: ScriptedExecutor
) -> None:
    task_id = await rig.create(in_30s())
    assert rig.clock.next_deadline == FIRE - LEAD
    await rig.at(FIRE - LEAD)
    run = await rig.only_run(task_id)
    assert run.status == RunStatus.RUNNING and run.created_at == FIRE - LEAD
    assert run.scheduled_for == FIRE and run.started_at == FIRE
    (attempt,) = await rig.store.list_attempts(None, run.id)
    assert attempt.started_at == FIRE
    assert action.calls == []  # held until its instant, which the clock waits for
    assert rig.clock.next_deadline == FIRE
    await rig.at(FIRE - timedelta(milliseconds=1))
    assert action.calls == []
    await rig.at(FIRE)
    (ctx,) = action.calls
    assert ctx.clock.now() == FIRE
    done = await rig.only_run(task_id)
    assert done.status == RunStatus.SUCCESS and done.started_at == FIRE


async def test_a_held_run_is_told_started_when_its_action_begins(rig: Rig) -> None:
    """What listens for runs (the lateness metric) hears of a held run when its action
    begins, as late as the wake came, not when it was written."""
    heard: list[RunNews] = []
    rig.engine.add_run_listener(heard.append)
    task_id = await rig.create(in_30s())
    await rig.at(FIRE - LEAD)
    assert [r for news in heard for r in news.started] == []
    late = FIRE + timedelta(milliseconds=3)
    await rig.at(late)
    (started,) = [r for news in heard for r in news.started]
    assert started.task_id == task_id and started.started_at == late
    assert (await rig.only_run(task_id)).started_at == FIRE  # as written


async def test_runs_that_end_as_they_are_written_are_not_recorded_early(rig: Rig) -> None:
    """An instant run's event is the fire itself: it must not come before the instant."""
    task_id = await rig.create(in_30s(action="wakeup"))
    await rig.at(FIRE - LEAD)
    assert await rig.store.list_runs(None, task_id=task_id) == []
    assert await rig.store.list_events(OWNER) == []
    assert rig.clock.next_deadline == FIRE  # no pass spins on it meanwhile
    await rig.at(FIRE)
    run = await rig.only_run(task_id)
    assert run.status == RunStatus.SUCCESS and run.finished_at == FIRE
    assert len(await rig.store.list_events(OWNER)) == 1


async def test_a_task_left_for_its_instant_does_not_hold_back_others(
    rig: Rig, action: ScriptedExecutor
) -> None:
    """In one lead, an instant task waits for its instant and a worker's task is recorded."""
    instant = await rig.create(in_30s("i", action="wakeup"))
    worked = await rig.create(in_30s("w"))
    await rig.at(FIRE - LEAD)
    assert await rig.store.list_runs(None, task_id=instant) == []
    assert (await rig.only_run(worked)).status == RunStatus.RUNNING
    await rig.at(FIRE)
    assert (await rig.only_run(instant)).status == RunStatus.SUCCESS
    assert (await rig.only_run(worked)).status == RunStatus.SUCCESS
    assert len(action.calls) == 1


async def test_a_delete_within_the_lead_cancels_the_held_run_before_its_action(
    rig: Rig, action: ScriptedExecutor
) -> None:
    task_id = await rig.create(in_30s())
    await rig.at(FIRE - LEAD)
    assert (await rig.only_run(task_id)).status == RunStatus.RUNNING
    await rig.tasks.delete(OWNER, task_id)
    await rig.at(FIRE)
    assert action.calls == [] and not rig.engine.inflight  # the run went with its task


async def test_a_stop_within_the_lead_interrupts_the_held_run(
    rig: Rig, action: ScriptedExecutor
) -> None:
    task_id = await rig.create(in_30s())
    await rig.at(FIRE - LEAD)
    await rig.engine.stop()
    assert action.calls == []
    run = await rig.only_run(task_id)
    (attempt,) = await rig.store.list_attempts(None, run.id)
    assert attempt.status == AttemptStatus.INTERRUPTED
    assert run.status == RunStatus.FAILURE  # no retry left: an interrupted run fails


async def test_without_a_lead_the_fire_is_recorded_at_its_instant(tmp_path: Path) -> None:
    action = ScriptedExecutor()
    async for rig in make_rig(tmp_path, {"noop": action}, lead=timedelta(0)):
        task_id = await rig.create(in_30s())
        assert rig.clock.next_deadline == FIRE
        await rig.at(FIRE - timedelta(milliseconds=1))
        assert await rig.store.list_runs(None, task_id=task_id) == []
        await rig.at(FIRE)
        assert (await rig.only_run(task_id)).created_at == FIRE
        assert len(action.calls) == 1


@pytest.mark.parametrize("lead", [timedelta(milliseconds=-1), timedelta(seconds=2)])
def test_a_lead_outside_0_to_1s_is_refused(lead: timedelta) -> None:
    with pytest.raises(ValueError, match="fire_lead must be between 0 and 1s"):
        EngineConfig(fire_lead=lead)


def test_the_lead_is_a_setting() -> None:
    assert load_settings(environ={}).engine_config().fire_lead == LEAD
    off = load_settings(environ={"WAKECALL_FIRE_LEAD": "0"}).engine_config()
    assert off.fire_lead == timedelta(0)
    assert load_settings({"fire_lead": "25ms"}, environ={}).engine_config().fire_lead == (
        timedelta(milliseconds=25)
    )


# --- planning a fire within the lead (pure) ---------------------------------------------------
MS = timedelta(milliseconds=1)


@pytest.mark.parametrize(
    ("late_by", "window", "runs", "missed"),
    [
        # Due 5 ms after now, within the reach: planned as a schedule run at its instant.
        (-5 * MS, timedelta(hours=1), 1, 0),
        # Down for 2 h with a 10-minute window: the 110 fires older than now - 10 min (the
        # first at FIRE - 2 h) are missed, the window judged at now (at the reach, 10 ms on,
        # the fire at FIRE - 10 min would be missed too), and the fire in reach runs.
        (timedelta(hours=2) - 5 * MS, timedelta(minutes=10), 1, 110),
    ],
)
def test_a_plan_reaches_ahead_but_judges_the_window_at_now(
    late_by: timedelta, window: timedelta, runs: int, missed: int
) -> None:
    from support.records import make_task
    from wakecall.engine.policies import plan_fires
    from wakecall.engine.scheduler import schedule_of
    from wakecall.store import DueTask

    now = FIRE - 5 * MS
    first = now - late_by
    start = first.isoformat()
    task = make_task(
        schedule={"kind": "interval", "every": "1m", "start": start, "timezone": "UTC"},
        next_fire_at=first,
        catchup_window_s=window.total_seconds(),
    )
    config = EngineConfig()
    plan = plan_fires(DueTask(task, 0, ()), schedule_of(task), now, config, reach=now + LEAD)
    ran = [r for r in plan.runs if r.status == RunStatus.QUEUED]
    assert [r.scheduled_for for r in ran] == [FIRE] * runs
    gone = [r.output["missedFires"] for r in plan.runs if r.status == RunStatus.MISSED]
    assert gone == ([missed] if missed else [])
    assert plan.next_fire_at == FIRE + timedelta(minutes=1)
