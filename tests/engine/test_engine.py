"""The engine driven by a fake clock: fires, retries, timeouts, policies, limits, wakeups."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from support.records import update_task
from wakecall.actions import WakeupExecutor
from wakecall.engine import Engine, EngineConfig, TaskService
from wakecall.engine.scheduler import RunNews
from wakecall.errors import Conflict, InvalidInput, InvalidSchedule, LimitReached, TaskNotFound
from wakecall.models import (
    AttemptStatus,
    EventType,
    NoopAction,
    RetryPolicy,
    RunStatus,
    TaskPatch,
    TaskSpec,
    TaskStatus,
    Trigger,
)
from wakecall.store import SQLiteStore
from wakecall.testing import (
    FakeClock,
    ScriptedExecutor,
    advance,
    run_until_idle,
    service_for,
    step_to,
)

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
OWNER = "alice"


@dataclass
class Rig:
    engine: Engine
    clock: FakeClock
    store: SQLiteStore
    action: ScriptedExecutor

    @property
    def tasks(self) -> TaskService:
        return service_for(self.engine)

    async def events(self, owner: str = OWNER) -> list[EventType]:
        return [e.type for e in await self.store.list_events(owner)]

    async def runs(self, task_id: str) -> list:  # type: ignore[type-arg]
        return list(reversed(await self.store.list_runs(None, task_id=task_id)))


def spec(schedule: str = "@every 1m", **kw: object) -> TaskSpec:
    return TaskSpec(name="job", schedule=schedule, action=NoopAction(), **kw)  # type: ignore[arg-type]


@pytest.fixture
def action() -> ScriptedExecutor:
    return ScriptedExecutor()


@pytest.fixture
def config(request: pytest.FixtureRequest) -> EngineConfig:
    """The engine's settings; a test may change some with `@pytest.mark.engine(**changes)`."""
    marker = request.node.get_closest_marker("engine")
    return EngineConfig(
        node_id="node-a",
        poll_interval=timedelta(hours=1),
        prune_every=timedelta(days=1),
        **(marker.kwargs if marker else {}),
    )


@pytest.fixture
async def rig(tmp_path: Path, action: ScriptedExecutor, config: EngineConfig) -> AsyncIterator[Rig]:
    store = SQLiteStore(tmp_path / "w.db")
    await store.open()
    clock = FakeClock(START)
    executors = {"noop": action, "wakeup": WakeupExecutor()}
    try:
        with anyio.fail_after(10):
            async with Engine(store, clock=clock, config=config, executors=executors) as engine:
                await run_until_idle(engine)
                yield Rig(engine, clock, store, action)
    finally:
        await store.close()


async def test_an_interval_task_fires_once_per_interval(rig: Rig) -> None:
    made = await rig.tasks.create(OWNER, spec("@every 1m"))
    task, created = made.task, made.created
    assert created and task.next_fire_at == START + timedelta(minutes=1)
    await step_to(rig.engine, rig.clock, START + timedelta(minutes=3, seconds=30))
    runs = await rig.runs(task.id)
    assert [r.scheduled_for for r in runs] == [START + timedelta(minutes=m) for m in (1, 2, 3)]
    assert all(r.status == RunStatus.SUCCESS and r.trigger == Trigger.SCHEDULE for r in runs)
    assert await rig.events() == [EventType.RUN_COMPLETED] * 3
    assert (await rig.store.get_task(None, task.id)).run_count == 3


async def test_the_loop_sleeps_until_the_next_fire_and_a_create_wakes_it(rig: Rig) -> None:
    lead = rig.engine.config.fire_lead  # it wakes that long before a fire, to record it
    await rig.tasks.create(OWNER, spec("0 13 * * *"))
    await run_until_idle(rig.engine)
    assert rig.clock.next_deadline == START + timedelta(hours=1) - lead
    await rig.tasks.create(OWNER, spec("in 30s"))
    await run_until_idle(rig.engine)
    assert rig.clock.next_deadline == START + timedelta(seconds=30) - lead


async def test_a_failed_attempt_is_retried_with_backoff(rig: Rig) -> None:
    rig.action.script = ["boom 1", "boom 2", "ok"]
    retry = RetryPolicy(attempts=3, backoff="exponential", delay="10s", jitter=False)
    task = (await rig.tasks.create(OWNER, spec("in 1m", retry=retry))).task
    await step_to(rig.engine, rig.clock, START + timedelta(minutes=1))
    (run,) = await rig.runs(task.id)
    assert run.status == RunStatus.QUEUED and run.attempt == 1 and run.error_message == "boom 1"
    assert run.due_at == START + timedelta(minutes=1, seconds=10)
    await step_to(rig.engine, rig.clock, START + timedelta(minutes=1, seconds=30))
    (run,) = await rig.runs(task.id)
    assert run.status == RunStatus.SUCCESS and run.attempt == 3
    starts = [c.run.attempt for c in rig.action.calls]
    assert starts == [1, 2, 3]
    attempts = await rig.store.list_attempts(None, run.id)
    assert [a.started_at - START for a in attempts] == [
        timedelta(minutes=1),
        timedelta(minutes=1, seconds=10),
        timedelta(minutes=1, seconds=30),  # 10s, then 20s
    ]
    assert await rig.events() == [EventType.RUN_COMPLETED]


async def test_a_run_out_of_attempts_fails_with_its_message(rig: Rig) -> None:
    rig.action.script = ["bad gateway", "bad gateway"]
    task = (
        await rig.tasks.create(
            OWNER, spec("in 1m", retry=RetryPolicy(attempts=2, backoff="none", delay="5s"))
        )
    ).task
    await step_to(rig.engine, rig.clock, START + timedelta(minutes=2))
    (run,) = await rig.runs(task.id)
    assert run.status == RunStatus.FAILURE and run.error_message == "bad gateway"
    (event,) = await rig.store.list_events(OWNER)
    assert event.type == EventType.RUN_FAILED
    assert event.payload["run"]["errorMessage"] == "bad gateway"
    assert event.payload["run"]["attempt"] == 2


async def test_an_attempt_past_its_timeout_is_cancelled_and_recorded(rig: Rig) -> None:
    rig.action.hold = True
    task = (await rig.tasks.create(OWNER, spec("in 1m", timeout="5s"))).task
    rig.clock.advance(timedelta(minutes=1))
    await _running(rig, 1)
    await advance(rig.engine, rig.clock, timedelta(seconds=5))
    (run,) = await rig.runs(task.id)
    assert run.status == RunStatus.TIMEOUT and "longer than 5s" in (run.error_message or "")
    assert rig.action.cancelled == 1
    assert await rig.events() == [EventType.RUN_FAILED]


async def _running(rig: Rig, count: int, calls: int | None = None) -> None:
    """Wait until `count` attempts are executing (and `calls` have started, when given)."""
    await rig.action.wait_for(
        lambda a: a.active == count and (calls is None or len(a.calls) == calls)
    )
    await _settle(rig)


async def test_overlap_skip_records_a_skipped_run(rig: Rig) -> None:
    rig.action.hold = True
    task = (await rig.tasks.create(OWNER, spec("@every 1m"))).task
    rig.clock.advance(timedelta(minutes=1))
    await _running(rig, 1)
    rig.clock.advance(timedelta(minutes=1))
    await _settle(rig)
    runs = await rig.runs(task.id)
    assert [r.status for r in runs] == [RunStatus.RUNNING, RunStatus.SKIPPED]
    assert "overlap policy 'skip'" in (runs[1].error_message or "")
    rig.action.release()
    await run_until_idle(rig.engine)
    assert (await rig.store.get_task(None, task.id)).run_count == 1


async def _settle(rig: Rig) -> None:
    """Wait until the loop sleeps again, with runs possibly still held by the action."""
    await anyio.lowlevel.checkpoint()
    await rig.engine.wait_until(rig.engine.is_settled)


async def test_overlap_queue_runs_the_next_fire_after_the_current_one(rig: Rig) -> None:
    rig.action.hold = True
    task = (await rig.tasks.create(OWNER, spec("@every 1m", overlap="queue"))).task
    rig.clock.advance(timedelta(minutes=1))
    await _running(rig, 1)
    rig.clock.advance(timedelta(minutes=1))
    await _settle(rig)
    runs = await rig.runs(task.id)
    assert [r.status for r in runs] == [RunStatus.RUNNING, RunStatus.QUEUED]
    rig.action.release()
    await _running(rig, 1, calls=2)
    runs = await rig.runs(task.id)
    assert [r.status for r in runs] == [RunStatus.SUCCESS, RunStatus.RUNNING]
    rig.action.release()
    await run_until_idle(rig.engine)
    assert [r.status for r in await rig.runs(task.id)] == [RunStatus.SUCCESS] * 2


async def test_overlap_cancel_previous_cancels_the_running_run(rig: Rig) -> None:
    rig.action.hold = True
    task = (await rig.tasks.create(OWNER, spec("@every 1m", overlap="cancel_previous"))).task
    rig.clock.advance(timedelta(minutes=1))
    await _running(rig, 1)
    rig.clock.advance(timedelta(minutes=1))
    await rig.action.wait_for(lambda a: a.cancelled == 1)
    await _running(rig, 1, calls=2)
    runs = await rig.runs(task.id)
    assert [r.status for r in runs] == [RunStatus.CANCELLED, RunStatus.RUNNING]
    assert "newer fire" in (runs[0].error_message or "")
    rig.action.release()
    await run_until_idle(rig.engine)


async def test_overlap_allow_runs_fires_side_by_side(rig: Rig) -> None:
    rig.action.hold = True
    task = (await rig.tasks.create(OWNER, spec("@every 1m", overlap="allow"))).task
    rig.clock.advance(timedelta(minutes=1))
    await _running(rig, 1)
    rig.clock.advance(timedelta(minutes=1))
    await _running(rig, 2)
    rig.action.release()
    await run_until_idle(rig.engine)
    assert [r.status for r in await rig.runs(task.id)] == [RunStatus.SUCCESS] * 2


@pytest.mark.parametrize(
    "config",
    [
        EngineConfig(
            node_id="n",
            concurrency=3,
            poll_interval=timedelta(hours=1),
            prune_every=timedelta(days=1),
        )
    ],
)
async def test_the_global_concurrency_limit_holds(rig: Rig) -> None:
    rig.action.hold = True
    for _ in range(7):
        await rig.tasks.create(OWNER, spec("in 1m"))
    rig.clock.advance(timedelta(minutes=1))
    for calls, active in ((3, 3), (6, 3), (7, 1)):
        await _running(rig, active, calls=calls)
        assert rig.action.active == active and len(rig.engine.inflight) == active
        rig.action.release()
    await run_until_idle(rig.engine)
    done = await rig.store.list_runs(OWNER, status=RunStatus.SUCCESS)
    assert len(done) == 7


async def test_catch_up_latest_runs_once_for_fires_missed_while_down(
    rig: Rig, tmp_path: Path
) -> None:
    task = (await rig.tasks.create(OWNER, spec("@every 1m"))).task
    # The clock jumps 10 minutes at once: to the engine that is downtime.
    await advance(rig.engine, rig.clock, timedelta(minutes=10, seconds=5))
    (run,) = await rig.runs(task.id)
    assert run.scheduled_for == START + timedelta(minutes=10)
    assert run.trigger == Trigger.CATCHUP and run.status == RunStatus.SUCCESS
    moved = await rig.store.get_task(None, task.id)
    assert moved.next_fire_at == START + timedelta(minutes=11)


async def test_catch_up_records_fires_beyond_the_window_as_one_missed_run(rig: Rig) -> None:
    task = (await rig.tasks.create(OWNER, spec("@every 1m", catchup_window="10m"))).task
    await advance(rig.engine, rig.clock, timedelta(hours=2))
    missed, ran = await rig.runs(task.id)
    assert missed.status == RunStatus.MISSED and ran.status == RunStatus.SUCCESS
    # Fires at minutes 1..109 are older than the 10-minute window; minute 120 runs.
    assert missed.output["missedFires"] == 109
    assert missed.scheduled_for == START + timedelta(minutes=109)
    assert ran.scheduled_for == START + timedelta(hours=2)
    assert await rig.events() == [EventType.RUN_MISSED, EventType.RUN_COMPLETED]


async def test_catch_up_all_replays_each_fire_inside_the_window(rig: Rig) -> None:
    task = (await rig.tasks.create(OWNER, spec("@every 1m", catchup="all"))).task
    await advance(rig.engine, rig.clock, timedelta(minutes=5))
    runs = await rig.runs(task.id)
    assert [r.scheduled_for for r in runs] == [START + timedelta(minutes=m) for m in range(1, 6)]
    assert all(r.status == RunStatus.SUCCESS for r in runs)


@pytest.mark.parametrize(
    "config",
    [
        EngineConfig(
            node_id="n",
            catchup_all_cap=3,
            poll_interval=timedelta(hours=1),
            prune_every=timedelta(days=1),
        )
    ],
)
async def test_catch_up_all_is_capped_and_the_rest_is_missed(rig: Rig) -> None:
    task = (await rig.tasks.create(OWNER, spec("@every 1m", catchup="all"))).task
    await advance(rig.engine, rig.clock, timedelta(minutes=5))
    runs = await rig.runs(task.id)
    statuses = sorted((r.scheduled_for, r.status) for r in runs)
    assert statuses == [
        (START + timedelta(minutes=2), RunStatus.MISSED),
        (START + timedelta(minutes=3), RunStatus.SUCCESS),
        (START + timedelta(minutes=4), RunStatus.SUCCESS),
        (START + timedelta(minutes=5), RunStatus.SUCCESS),
    ]
    missed = next(r for r in runs if r.status == RunStatus.MISSED)
    assert missed.output["missedFires"] == 2


async def test_catch_up_skip_runs_nothing_late_and_carries_on(rig: Rig) -> None:
    task = (await rig.tasks.create(OWNER, spec("@every 1m", catchup="skip"))).task
    await advance(rig.engine, rig.clock, timedelta(minutes=5))
    (missed,) = await rig.runs(task.id)
    assert missed.status == RunStatus.MISSED and missed.output["missedFires"] == 5
    await step_to(rig.engine, rig.clock, START + timedelta(minutes=6))
    runs = await rig.runs(task.id)
    assert runs[-1].scheduled_for == START + timedelta(minutes=6)
    assert runs[-1].status == RunStatus.SUCCESS


async def test_max_runs_ends_the_task_with_task_expired_after_the_last_run(rig: Rig) -> None:
    task = (await rig.tasks.create(OWNER, spec("@every 1m", max_runs=2))).task
    await step_to(rig.engine, rig.clock, START + timedelta(minutes=5))
    assert len(await rig.runs(task.id)) == 2
    ended = await rig.store.get_task(None, task.id)
    assert ended.status == TaskStatus.EXPIRED and ended.next_fire_at is None
    events = await rig.store.list_events(OWNER)
    assert [e.type for e in events] == [
        EventType.RUN_COMPLETED,
        EventType.RUN_COMPLETED,
        EventType.TASK_EXPIRED,
    ]
    assert events[-1].payload["reason"] == "max_runs_reached"


async def test_expires_at_ends_the_task(rig: Rig) -> None:
    task = (
        await rig.tasks.create(
            OWNER, spec("@every 1m", expires_at=START + timedelta(minutes=2, seconds=30))
        )
    ).task
    await step_to(rig.engine, rig.clock, START + timedelta(minutes=5))
    assert [r.scheduled_for for r in await rig.runs(task.id)] == [
        START + timedelta(minutes=1),
        START + timedelta(minutes=2),
    ]
    events = await rig.store.list_events(OWNER)
    assert events[-1].type == EventType.TASK_EXPIRED
    assert events[-1].payload["reason"] == "expired_at_reached"


async def test_a_once_task_completes_after_its_fire(rig: Rig) -> None:
    task = (await rig.tasks.create(OWNER, spec("in 5m"))).task
    await step_to(rig.engine, rig.clock, START + timedelta(minutes=6))
    done = await rig.store.get_task(None, task.id)
    assert done.status == TaskStatus.COMPLETED and done.next_fire_at is None
    assert await rig.events() == [EventType.RUN_COMPLETED]


async def test_pause_stops_fires_and_resume_continues_from_now(rig: Rig) -> None:
    task = (await rig.tasks.create(OWNER, spec("@every 1m"))).task
    paused = await rig.tasks.pause(OWNER, task.id, "maintenance")
    assert paused.status == TaskStatus.PAUSED and paused.pause_note == "maintenance"
    await step_to(rig.engine, rig.clock, START + timedelta(minutes=30, seconds=10))
    assert await rig.runs(task.id) == []
    resumed = await rig.tasks.resume(OWNER, task.id)
    assert resumed.next_fire_at == START + timedelta(minutes=31)
    await step_to(rig.engine, rig.clock, START + timedelta(minutes=31))
    (run,) = await rig.runs(task.id)
    assert run.scheduled_for == START + timedelta(minutes=31)


async def test_patching_the_schedule_takes_effect_at_once(rig: Rig) -> None:
    task = (await rig.tasks.create(OWNER, spec("0 13 * * *"))).task
    await run_until_idle(rig.engine)
    patched = (await rig.tasks.patch(OWNER, task.id, TaskPatch(schedule="*/5 * * * *"))).task
    assert patched.next_fire_at == START + timedelta(minutes=5)
    await run_until_idle(rig.engine)
    assert rig.clock.next_deadline == START + timedelta(minutes=5) - rig.engine.config.fire_lead
    patched = (
        await rig.tasks.patch(
            OWNER, task.id, TaskPatch(timezone="America/New_York", schedule="0 9 * * *")
        )
    ).task
    assert patched.timezone == "America/New_York"
    assert patched.next_fire_at == datetime(2026, 1, 5, 14, 0, tzinfo=UTC)  # 09:00 EST


async def test_same_idempotency_key_creates_one_task(rig: Rig) -> None:
    made = await rig.tasks.create(OWNER, spec(idempotency_key="daily-report"))
    a, created_a = made.task, made.created
    made = await rig.tasks.create(OWNER, spec(idempotency_key="daily-report"))
    b, created_b = made.task, made.created
    assert created_a and not created_b and a.id == b.id


async def test_delete_cancels_the_running_run(rig: Rig) -> None:
    rig.action.hold = True
    task = (await rig.tasks.create(OWNER, spec("in 1m"))).task
    rig.clock.advance(timedelta(minutes=1))
    await _running(rig, 1)
    await rig.tasks.delete(OWNER, task.id)
    await run_until_idle(rig.engine)
    assert rig.action.cancelled == 1
    with pytest.raises(TaskNotFound):
        await rig.store.get_task(None, task.id)


async def test_run_now_runs_at_once_without_counting(rig: Rig) -> None:
    task = (await rig.tasks.create(OWNER, spec("0 0 1 1 *", max_runs=1))).task
    run = await rig.tasks.run_now(OWNER, task.id)
    assert run.trigger == Trigger.MANUAL
    await run_until_idle(rig.engine)
    assert (await rig.store.get_run(None, run.id)).status == RunStatus.SUCCESS
    assert (await rig.store.get_task(None, task.id)).run_count == 0


async def test_a_wakeup_fires_with_its_reason_and_context(rig: Rig) -> None:
    receipt = await rig.tasks.schedule_wakeup(
        OWNER, delay="15m", reason="check the deploy", context={"pr": 42}
    )
    assert receipt.scheduled_for == START + timedelta(minutes=15) and not receipt.clamped
    await step_to(rig.engine, rig.clock, START + timedelta(minutes=15))
    (event,) = await rig.store.list_events(OWNER)
    assert event.type == EventType.WAKEUP_FIRED
    assert event.payload["wakeup"] == {"reason": "check the deploy", "context": {"pr": 42}}
    assert event.payload["run"]["trigger"] == "wakeup"  # every run says what started it


async def test_wakeup_delays_are_clamped_to_the_configured_bounds(rig: Rig) -> None:
    short = await rig.tasks.schedule_wakeup(OWNER, delay="1s")
    assert short.clamped and short.scheduled_for == START + timedelta(seconds=10)
    long = await rig.tasks.schedule_wakeup(OWNER, delay="90d")
    assert long.clamped and long.scheduled_for == START + timedelta(days=30)


async def test_a_wakeup_dedupe_key_gives_one_wakeup(rig: Rig) -> None:
    a = await rig.tasks.schedule_wakeup(OWNER, delay="5m", dedupe_key="poll-ci")
    b = await rig.tasks.schedule_wakeup(OWNER, delay="9m", dedupe_key="poll-ci")
    assert a.task.id == b.task.id and not b.created
    assert b.scheduled_for == a.scheduled_for


@pytest.mark.engine(concurrency=1)
async def test_a_wakeup_ends_at_its_fire_even_when_every_slot_is_busy(rig: Rig) -> None:
    """A wakeup calls nothing outside: its run ends in the pass that fires it, without a slot
    or a worker, and listeners hear of it as started and finished."""
    rig.action.hold = True
    await rig.tasks.create(OWNER, spec("in 1m"))
    receipt = await rig.tasks.schedule_wakeup(OWNER, delay="2m", reason="look again")
    news: list[RunNews] = []
    rig.engine.add_run_listener(news.append)
    rig.clock.set(START + timedelta(minutes=1))
    await rig.action.wait_for(lambda a: a.active == 1)  # the only slot is taken
    rig.clock.set(START + timedelta(minutes=2))
    await rig.engine.wait_until(rig.engine.is_settled)
    (run,) = await rig.runs(receipt.task.id)
    assert (run.status, run.attempt, run.duration_ms) == (RunStatus.SUCCESS, 1, 0)
    assert run.started_at == run.finished_at == START + timedelta(minutes=2)
    assert run.output == {"reason": "look again", "context": None}
    assert await rig.events() == [EventType.WAKEUP_FIRED]
    assert rig.action.active == 1 and len(rig.engine.inflight) == 1
    assert [r.id for n in news for r in n.started if r.task_id == receipt.task.id] == [run.id]
    assert [(r.id, how) for n in news for r, how in n.finished] == [(run.id, AttemptStatus.SUCCESS)]
    rig.action.release()
    await run_until_idle(rig.engine)
    assert await rig.events() == [EventType.WAKEUP_FIRED, EventType.RUN_COMPLETED]


class _InstantScripted(ScriptedExecutor):
    """A scripted executor that also has an instant end, as wakeups do."""

    def instant_output(self, task: object) -> object:
        return {"instant": True}


async def test_a_fire_of_an_instant_task_with_a_run_in_flight_waits_for_a_worker(
    rig: Rig,
) -> None:
    """The instant end applies only where no overlap rule can: a fire that comes while a
    manual run is running is queued behind it (overlap `queue`) and executed by a worker."""
    held = _InstantScripted(hold=True)
    rig.engine.executors["noop"] = held
    task = (await rig.tasks.create(OWNER, spec("@every 1m", overlap="queue"))).task
    manual = await rig.tasks.run_now(OWNER, task.id)
    await held.wait_for(lambda a: a.active == 1)
    rig.clock.set(START + timedelta(minutes=1))
    await rig.engine.wait_until(rig.engine.is_settled)
    (fired,) = [r for r in await rig.runs(task.id) if r.id != manual.id]
    assert fired.status == RunStatus.QUEUED and fired.attempt == 0
    held.release()
    await held.wait_for(lambda a: len(a.calls) == 2 and a.active == 1)
    held.release()
    await run_until_idle(rig.engine)
    runs = {r.id: r for r in await rig.runs(task.id)}
    assert runs[manual.id].output == {"call": 1} and runs[fired.id].output == {"call": 2}
    assert runs[fired.id].status == RunStatus.SUCCESS
    # With nothing in flight, the next fire ends at birth: no third call.
    await step_to(rig.engine, rig.clock, START + timedelta(minutes=2))
    (last,) = [r for r in await rig.runs(task.id) if r.id not in runs]
    assert last.output == {"instant": True} and len(held.calls) == 2


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("61 * * * *", "minute"),
        ("0 0 31 2 *", "never"),
        ("@every 100ms", "minimum"),
        ("not a schedule", "Example"),
    ],
)
async def test_bad_schedules_are_refused_and_nothing_is_stored(
    rig: Rig, schedule: str, message: str
) -> None:
    with pytest.raises(InvalidSchedule, match=message):
        await rig.tasks.create(OWNER, spec(schedule))
    assert await rig.store.list_tasks(None) == []


async def test_an_unknown_time_zone_is_refused(rig: Rig) -> None:
    with pytest.raises(InvalidSchedule, match="Mars/Olympus"):
        await rig.tasks.create(OWNER, spec("0 9 * * *", timezone="Mars/Olympus"))
    assert await rig.store.list_tasks(None) == []


async def test_ended_tasks_refuse_changes_with_a_clear_reason(rig: Rig) -> None:
    task = (await rig.tasks.create(OWNER, spec("in 1m"))).task
    await step_to(rig.engine, rig.clock, START + timedelta(minutes=2))
    with pytest.raises(Conflict, match="ended"):
        await rig.tasks.patch(OWNER, task.id, TaskPatch(schedule="in 5m"))
    with pytest.raises(Conflict):
        await rig.tasks.resume(OWNER, task.id)
    renamed = (await rig.tasks.patch(OWNER, task.id, TaskPatch(name="done"))).task
    assert renamed.name == "done"


async def test_expires_at_before_the_first_fire_is_refused(rig: Rig) -> None:
    with pytest.raises(InvalidInput, match="before the first fire"):
        await rig.tasks.create(OWNER, spec("0 0 1 1 *", expires_at=START + timedelta(days=1)))


@pytest.mark.parametrize(
    "config",
    [
        EngineConfig(
            node_id="n",
            max_tasks_per_owner=2,
            poll_interval=timedelta(hours=1),
            prune_every=timedelta(days=1),
        )
    ],
)
async def test_the_per_owner_task_limit_is_enforced(rig: Rig) -> None:
    await rig.tasks.create(OWNER, spec())
    await rig.tasks.create(OWNER, spec())
    with pytest.raises(LimitReached, match="2 tasks"):
        await rig.tasks.create(OWNER, spec())
    await rig.tasks.create("bob", spec())


async def test_a_run_whose_node_died_is_reaped_and_retried(rig: Rig) -> None:
    task = (
        await rig.tasks.create(
            OWNER, spec("in 1m", retry=RetryPolicy(attempts=2, delay="1s", jitter=False))
        )
    ).task
    await rig.tasks.pause(OWNER, task.id)
    await run_until_idle(rig.engine)
    # Another node claims the fire and starts the run, then dies without finishing it.
    await update_task(
        rig.store,
        None,
        task.id,
        {"status": TaskStatus.ACTIVE, "next_fire_at": START + timedelta(minutes=1)},
        START,
    )
    from wakecall.engine.policies import plan_fires
    from wakecall.engine.scheduler import schedule_of

    fire = START + timedelta(minutes=1)
    lease = timedelta(seconds=30)
    (due,) = await rig.store.claim_due_tasks("dead", fire, 10, lease)
    plan = plan_fires(due, schedule_of(due.task), fire, rig.engine.config)
    await rig.store.record_fires("dead", fire, [plan])
    (claimed,) = await rig.store.claim_runs("dead", fire, 10, lease)
    await rig.store.start_attempts("dead", fire, [claimed.id])
    rig.engine.wake()  # as the store's hint of another node's writes does
    await step_to(rig.engine, rig.clock, fire + timedelta(minutes=2))
    (run,) = await rig.runs(task.id)
    assert run.status == RunStatus.SUCCESS and run.attempt == 2
    attempts = await rig.store.list_attempts(None, run.id)
    assert [(a.status, a.node) for a in attempts] == [
        ("interrupted", "dead"),
        ("success", "node-a"),
    ]


# --- heartbeats ------------------------------------------------------------------------------
async def _advance_held(rig: Rig, delta: timedelta) -> None:
    """Move the clock while a held run executes, and let the engine act on it."""
    rig.clock.advance(delta)
    await _settle(rig)


@pytest.mark.engine(heartbeat_timeout=timedelta(minutes=5))
async def test_a_silent_run_is_reported_stale_once_and_left_running(rig: Rig) -> None:
    rig.action.hold = True
    task = (await rig.tasks.create(OWNER, spec("in 1m"))).task
    rig.clock.advance(timedelta(minutes=1))
    await _running(rig, 1)
    # Beats keep it fresh: 4 minutes, a beat, 4 more minutes: nothing to report.
    await _advance_held(rig, timedelta(minutes=4))
    rig.action.calls[-1].beat()
    await _advance_held(rig, timedelta(minutes=4))
    assert await rig.events() == []
    # Five minutes without a beat: one stale event; the run goes on.
    await _advance_held(rig, timedelta(minutes=1))
    events = await rig.store.list_events(OWNER)
    assert [e.type for e in events] == [EventType.RUN_STALE]
    beat = events[0].payload["heartbeat"]
    assert beat["silentS"] == 300 and beat["thresholdS"] == 300 and beat["killed"] is False
    assert events[0].run_id == (await rig.runs(task.id))[0].id
    await _advance_held(rig, timedelta(minutes=30))
    assert await rig.events() == [EventType.RUN_STALE]  # reported once
    rig.action.release()
    await run_until_idle(rig.engine)
    (run,) = await rig.runs(task.id)
    assert run.status == RunStatus.SUCCESS
    assert await rig.events() == [EventType.RUN_STALE, EventType.RUN_COMPLETED]


@pytest.mark.engine(heartbeat_timeout=timedelta(minutes=5), kill_stale=True)
async def test_a_stale_run_is_cancelled_when_so_configured_and_retried(rig: Rig) -> None:
    rig.action.hold = True
    task = (
        await rig.tasks.create(
            OWNER, spec("in 1m", retry=RetryPolicy(attempts=2, delay="10s", jitter=False))
        )
    ).task
    rig.clock.advance(timedelta(minutes=1))
    await _running(rig, 1)
    await _advance_held(rig, timedelta(minutes=5))
    await _running(rig, 0)
    assert rig.action.cancelled == 1
    attempts = await rig.store.list_attempts(None, (await rig.runs(task.id))[0].id)
    assert attempts[0].status == "timeout"
    assert "no sign of life" in (attempts[0].error_message or "")
    rig.action.hold = False
    await advance(rig.engine, rig.clock, timedelta(seconds=10))
    (run,) = await rig.runs(task.id)
    assert run.status == RunStatus.SUCCESS and run.attempt == 2
    assert await rig.events() == [EventType.RUN_STALE, EventType.RUN_COMPLETED]


@pytest.mark.engine(heartbeat_timeout=None)
async def test_without_a_heartbeat_timeout_a_silent_run_is_never_stale(rig: Rig) -> None:
    rig.action.hold = True
    await rig.tasks.create(OWNER, spec("in 1m"))
    rig.clock.advance(timedelta(minutes=1))
    await _running(rig, 1)
    await _advance_held(rig, timedelta(hours=3))
    assert await rig.events() == []
    rig.action.release()


# --- chains ----------------------------------------------------------------------------------
async def test_a_chain_runs_each_step_after_the_one_before_with_its_output(rig: Rig) -> None:
    extract = (
        await rig.tasks.create(
            OWNER, TaskSpec(name="extract", schedule="in 1m", action=NoopAction())
        )
    ).task
    transform = (
        await rig.tasks.create(
            OWNER, TaskSpec(name="transform", depends_on=extract.id, action=NoopAction())
        )
    ).task
    load = (
        await rig.tasks.create(
            OWNER, TaskSpec(name="load", depends_on=transform.id, action=NoopAction())
        )
    ).task
    assert transform.schedule["type"] == "on_demand" and transform.next_fire_at is None
    await step_to(rig.engine, rig.clock, START + timedelta(minutes=2))
    (first,) = await rig.runs(extract.id)
    (second,) = await rig.runs(transform.id)
    (third,) = await rig.runs(load.id)
    assert [r.status for r in (first, second, third)] == [RunStatus.SUCCESS] * 3
    assert second.trigger == Trigger.DEPENDENCY and third.trigger == Trigger.DEPENDENCY
    assert second.input["run"] == {
        "id": first.id,
        "status": "success",
        "output": first.output,
        "finishedAt": first.finished_at.isoformat().replace("+00:00", "Z"),  # type: ignore[union-attr]
        "trigger": "schedule",
    }
    assert third.input["task"] == {"id": transform.id, "name": "transform"}
    # The actions ran in order, each handed its run's input.
    assert [c.task.id for c in rig.action.calls] == [extract.id, transform.id, load.id]
    assert rig.action.calls[1].run.input == second.input


async def test_a_failed_step_ends_the_chain_there(rig: Rig) -> None:
    rig.action.script = ["boom"]
    extract = (
        await rig.tasks.create(
            OWNER, TaskSpec(name="extract", schedule="in 1m", action=NoopAction())
        )
    ).task
    transform = (
        await rig.tasks.create(
            OWNER, TaskSpec(name="transform", depends_on=extract.id, action=NoopAction())
        )
    ).task
    await step_to(rig.engine, rig.clock, START + timedelta(minutes=2))
    assert [r.status for r in await rig.runs(extract.id)] == [RunStatus.FAILURE]
    assert await rig.runs(transform.id) == []


async def test_chains_refuse_cycles_and_tasks_that_are_not_yours(rig: Rig) -> None:
    a = (
        await rig.tasks.create(OWNER, TaskSpec(name="a", schedule="@every 1h", action=NoopAction()))
    ).task
    b = (await rig.tasks.create(OWNER, TaskSpec(name="b", depends_on=a.id))).task
    c = (await rig.tasks.create(OWNER, TaskSpec(name="c", depends_on=b.id))).task
    with pytest.raises(InvalidInput, match=re.escape(f"({a.id} -> {c.id} -> {b.id} -> {a.id})")):
        await rig.tasks.patch(OWNER, a.id, TaskPatch(depends_on=c.id))
    with pytest.raises(InvalidInput, match="cycle"):
        await rig.tasks.patch(OWNER, a.id, TaskPatch(depends_on=a.id))
    assert (await rig.tasks.get(OWNER, a.id)).depends_on is None  # nothing changed
    theirs = (
        await rig.tasks.create(
            "bob", TaskSpec(name="theirs", schedule="@every 1h", action=NoopAction())
        )
    ).task
    with pytest.raises(InvalidInput, match="not one of your tasks"):
        await rig.tasks.create(OWNER, TaskSpec(name="d", depends_on=theirs.id))
    with pytest.raises(InvalidInput, match="not one of your tasks"):
        await rig.tasks.create(OWNER, TaskSpec(name="e", depends_on="tsk_nope"))
    assert len(await rig.store.list_tasks(OWNER)) == 3
