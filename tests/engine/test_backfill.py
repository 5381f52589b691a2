"""Backfill through the engine, on a fake clock, over every store: past fires of a task's own
schedule queued as runs that go through the queue, the dispatcher and the events like any run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from wakecall.actions import WakeupExecutor
from wakecall.engine import Engine, EngineConfig, TaskService
from wakecall.engine.schedule_cache import schedule_of
from wakecall.errors import Conflict, InvalidInput, TaskNotFound
from wakecall.models import EventType, NoopAction, RunStatus, TaskSpec, Trigger
from wakecall.store import Store
from wakecall.testing import FakeClock, ScriptedExecutor, run_until_idle, service_for, step_to
from wakecall.tracecontext import parse_trace

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
OWNER = "alice"


@dataclass
class Rig:
    engine: Engine
    clock: FakeClock
    store: Store
    action: ScriptedExecutor

    @property
    def tasks(self) -> TaskService:
        return service_for(self.engine)

    async def runs(self, task_id: str) -> list:  # type: ignore[type-arg]
        return list(reversed(await self.store.list_runs(None, task_id=task_id, limit=100)))


@pytest.fixture
async def rig(store: Store, request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    marker = request.node.get_closest_marker("engine")
    config = EngineConfig(
        node_id="node-a",
        poll_interval=timedelta(hours=1),
        prune_every=timedelta(days=1),
        **(marker.kwargs if marker else {}),
    )
    clock = FakeClock(NOW)
    action = ScriptedExecutor()
    executors = {"noop": action, "wakeup": WakeupExecutor()}
    with anyio.fail_after(20):
        async with Engine(store, clock=clock, config=config, executors=executors) as engine:
            await run_until_idle(engine)
            yield Rig(engine, clock, store, action)


def daily(at: str = "30 2 * * *", zone: str = "Europe/Paris", **kw: object) -> TaskSpec:
    return TaskSpec(name="job", schedule=at, timezone=zone, action=NoopAction(), **kw)  # type: ignore[arg-type]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


async def test_a_dst_task_is_backfilled_at_the_fires_its_schedule_computes(rig: Rig) -> None:
    task = (await rig.tasks.create(OWNER, daily())).task
    start, end = utc("2026-03-27T00:00:00+01:00"), utc("2026-04-01T00:00:00+02:00")
    receipt = await rig.tasks.backfill(OWNER, task.id, start=start, end=end)
    # 02:30 in Paris; on 29 March clocks jump from 02:00 to 03:00: the first valid instant.
    assert receipt.slots == [
        utc("2026-03-27T02:30:00+01:00"),
        utc("2026-03-28T02:30:00+01:00"),
        utc("2026-03-29T03:00:00+02:00"),
        utc("2026-03-30T02:30:00+02:00"),
        utc("2026-03-31T02:30:00+02:00"),
    ]
    schedule, walked, at = schedule_of(task), [], start - timedelta(microseconds=1)
    while (at := schedule.next_after(at)) is not None and at < end:  # type: ignore[assignment]
        walked.append(at)
    assert receipt.slots == walked
    # When clocks go back (25 October) the fixed-time job has one slot.
    autumn = await rig.tasks.backfill(
        OWNER, task.id, start=utc("2026-10-24T12:00:00+02:00"), end=utc("2026-10-26T12:00:00+01:00")
    )
    assert len(autumn.slots) == 2


async def test_backfill_runs_go_through_the_queue_one_after_another(rig: Rig) -> None:
    rig.action.hold = True
    task = (await rig.tasks.create(OWNER, daily())).task
    start, end = utc("2026-10-01T00:00:00Z"), utc("2026-10-04T00:00:00Z")
    receipt = await rig.tasks.backfill(OWNER, task.id, start=start, end=end)
    assert [r.status for r in receipt.done.runs] == [RunStatus.QUEUED] * 3
    for n in range(1, 4):
        await rig.action.wait_for(lambda a, n=n: len(a.calls) == n)  # type: ignore[misc]
        assert rig.action.active == 1  # the task's own overlap is skip: one at a time anyway
        rig.action.release()
    await step_to(rig.engine, rig.clock, NOW + timedelta(seconds=1))
    runs = await rig.runs(task.id)
    assert [(r.trigger, r.status) for r in runs] == [(Trigger.BACKFILL, RunStatus.SUCCESS)] * 3
    assert [c.run.scheduled_for for c in rig.action.calls] == receipt.slots
    events = await rig.store.list_events(OWNER)
    assert [e.type for e in events] == [EventType.RUN_COMPLETED] * 3
    for event, slot in zip(events, receipt.slots, strict=True):
        assert event.payload["run"]["trigger"] == "backfill"
        assert event.payload["run"]["scheduledFor"] == slot.isoformat().replace("+00:00", "Z")
    assert (await rig.store.get_task(None, task.id)).run_count == 0


async def test_a_second_backfill_queues_only_the_slots_not_backfilled(rig: Rig) -> None:
    task = (await rig.tasks.create(OWNER, daily())).task
    first = await rig.tasks.backfill(
        OWNER, task.id, start=utc("2026-10-01T00:00:00Z"), end=utc("2026-10-03T00:00:00Z")
    )
    again = await rig.tasks.backfill(
        OWNER, task.id, start=utc("2026-10-01T00:00:00Z"), end=utc("2026-10-05T00:00:00Z")
    )
    assert len(first.done.runs) == 2
    assert (len(again.done.runs), again.done.existing) == (2, first.slots)
    assert len(await rig.runs(task.id)) == 4


async def test_backfill_runs_carry_the_trace_context_of_the_call(rig: Rig) -> None:
    task = (await rig.tasks.create(OWNER, daily())).task
    trace = parse_trace("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "k=v")
    assert trace is not None
    done = await rig.tasks.backfill(
        OWNER,
        task.id,
        start=utc("2026-10-01T00:00:00Z"),
        end=utc("2026-10-03T00:00:00Z"),
        trace=trace,
    )
    assert [run.trace for run in done.done.runs] == [trace, trace]
    stored = await rig.runs(task.id)
    assert [(r.trigger, r.traceparent, r.tracestate) for r in stored] == [
        (Trigger.BACKFILL, trace.traceparent, "k=v")
    ] * 2


@pytest.mark.engine(backfill_max_slots=10)
async def test_a_range_over_the_cap_is_refused_with_where_to_split(rig: Rig) -> None:
    task = (await rig.tasks.create(OWNER, daily("0 * * * *", "UTC"))).task
    with pytest.raises(InvalidInput) as refused:
        await rig.tasks.backfill(
            OWNER, task.id, start=utc("2026-10-01T00:00:00Z"), end=utc("2026-10-02T00:00:00Z")
        )
    text = str(refused.value)
    assert "holds 24 fires" in text and "more than the 10 one backfill may queue" in text
    assert "from 2026-10-01T00:00:00Z to 2026-10-01T10:00:00Z (10 fires)" in text
    assert "Example: " in text
    assert await rig.runs(task.id) == []


async def test_bad_requests_are_refused_and_change_nothing(rig: Rig) -> None:
    task = (await rig.tasks.create(OWNER, daily())).task
    day = timedelta(days=1)
    cases: list[tuple[type[Exception], dict[str, object], str]] = [
        (InvalidInput, {"start": NOW - day, "end": NOW + day}, "is in the future"),
        (InvalidInput, {"start": NOW - day, "end": NOW - 2 * day}, "is not before 'to'"),
        (InvalidInput, {"start": NOW - day, "end": NOW, "overlap": "all"}, "is not one of"),
    ]
    for error, kw, words in cases:
        with pytest.raises(error, match=words):
            await rig.tasks.backfill(OWNER, task.id, **kw)  # type: ignore[arg-type]
    with pytest.raises(TaskNotFound):
        await rig.tasks.backfill("mallory", task.id, start=NOW - day, end=NOW)
    with pytest.raises(TaskNotFound):
        await rig.tasks.backfill(OWNER, "tsk_nope", start=NOW - day, end=NOW)
    assert await rig.runs(task.id) == []


async def test_a_paused_task_is_backfilled_and_stays_paused(rig: Rig) -> None:
    task = (await rig.tasks.create(OWNER, daily())).task
    await rig.tasks.pause(OWNER, task.id, "maintenance")
    await rig.tasks.backfill(OWNER, task.id, start=NOW - timedelta(days=2), end=NOW)
    await step_to(rig.engine, rig.clock, NOW + timedelta(seconds=1))
    runs = await rig.runs(task.id)
    assert [r.status for r in runs] == [RunStatus.SUCCESS] * 2
    assert (await rig.store.get_task(None, task.id)).status == "paused"


async def test_an_ended_task_is_refused(rig: Rig) -> None:
    task = (await rig.tasks.create(OWNER, daily("in 1m"))).task
    await step_to(rig.engine, rig.clock, NOW + timedelta(minutes=2))
    with pytest.raises(Conflict, match="has ended"):
        await rig.tasks.backfill(OWNER, task.id, start=NOW - timedelta(days=1), end=NOW)


async def test_a_dry_run_lists_the_slots_and_queues_nothing(rig: Rig) -> None:
    task = (await rig.tasks.create(OWNER, daily())).task
    preview = await rig.tasks.backfill(
        OWNER, task.id, start=NOW - timedelta(days=3), end=NOW, dry_run=True
    )
    assert len(preview.slots) == 3 and len(preview.done.runs) == 3
    assert await rig.runs(task.id) == []
