"""Flow control by key, driven by a fake clock over every store: concurrency and rate limits
shared by an owner's tasks, runs held back kept queued and started oldest first, the engine
waking when a slot frees up or a rate window opens (never polling)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
import pytest
from pydantic import ValidationError

from wakecall.actions import WakeupExecutor
from wakecall.engine import Engine, EngineConfig, TaskService
from wakecall.errors import InvalidInput
from wakecall.models import NoopAction, Run, RunStatus, TaskPatch, TaskSpec
from wakecall.store import Store
from wakecall.testing import FakeClock, ScriptedExecutor, run_until_idle, service_for, step_to

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
OWNER = "alice"
CRM_2 = {"key": "crm", "limit": 2}


@dataclass
class Rig:
    engine: Engine
    clock: FakeClock
    store: Store
    action: ScriptedExecutor

    @property
    def tasks(self) -> TaskService:
        return service_for(self.engine)

    async def settle(self) -> None:
        """Until the loop sleeps (runs may still be held by the action)."""
        await anyio.lowlevel.checkpoint()
        await self.engine.wait_until(self.engine.is_settled)

    async def runs(self, owner: str = OWNER) -> list[Run]:
        return sorted(await self.store.list_runs(owner, limit=100), key=lambda r: r.id)


def once(**kw: object) -> TaskSpec:
    return TaskSpec(name="job", schedule="in 10s", action=NoopAction(), **kw)  # type: ignore[arg-type]


@pytest.fixture
async def rig(store: Store) -> AsyncIterator[Rig]:
    clock = FakeClock(START)
    action = ScriptedExecutor(hold=True)
    config = EngineConfig(
        node_id="node-a", poll_interval=timedelta(hours=1), prune_every=timedelta(days=1)
    )
    executors = {"noop": action, "wakeup": WakeupExecutor()}
    with anyio.fail_after(20):
        async with Engine(store, clock=clock, config=config, executors=executors) as engine:
            await run_until_idle(engine)
            yield Rig(engine, clock, store, action)
            action.hold = False
            action.release()


async def test_a_concurrency_key_holds_runs_queued_and_starts_them_oldest_first_as_slots_free(
    rig: Rig,
) -> None:
    made = [(await rig.tasks.create(OWNER, once(concurrency=CRM_2))).task for _ in range(5)]
    rig.clock.set(START + timedelta(seconds=10))
    await rig.settle()
    for expected_running in (2, 2, 1):
        assert rig.action.active == expected_running
        runs = await rig.runs()
        running = [r for r in runs if r.status == RunStatus.RUNNING]
        assert len(running) == expected_running
        assert all(
            r.status in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.SUCCESS) for r in runs
        )
        want = min(len(rig.action.calls) + 2, 5)
        rig.action.release()
        await rig.action.wait_for(lambda a, want=want: len(a.calls) == want)
        await rig.settle()
    rig.action.release()
    await run_until_idle(rig.engine)
    runs = await rig.runs()
    assert [r.status for r in runs] == [RunStatus.SUCCESS] * 5  # none lost, none skipped
    # Oldest first: the runs were queued in creation order (one instant, ids in order).
    by_task = {r.task_id: r for r in runs}
    assert [c.task.id for c in rig.action.calls] == [
        t.id for t in sorted(made, key=lambda t: by_task[t.id].id)
    ]


async def test_a_held_run_says_why_it_waits(rig: Rig) -> None:
    for _ in range(3):
        await rig.tasks.create(OWNER, once(concurrency=CRM_2))
    rig.clock.set(START + timedelta(seconds=10))
    await rig.settle()
    runs = await rig.runs()
    held = [r for r in runs if r.status == RunStatus.QUEUED]
    assert len(held) == 1
    waits = await rig.tasks.flow_wait(OWNER, held[0].task_id)
    assert waits == "waiting for concurrency key crm (2/2 running)"
    running = next(r for r in runs if r.status == RunStatus.RUNNING)
    assert await rig.tasks.flow_wait(OWNER, running.task_id) is None


async def test_keys_are_per_owner_and_tasks_without_the_key_are_not_held(rig: Rig) -> None:
    one = {"key": "crm", "limit": 1}
    for owner in (OWNER, "bob"):
        for _ in range(2):
            await rig.tasks.create(owner, once(concurrency=one))
    await rig.tasks.create(OWNER, once(concurrency={"key": "other", "limit": 1}))
    await rig.tasks.create(OWNER, once())
    rig.clock.set(START + timedelta(seconds=10))
    await rig.settle()
    # alice: one crm, one other, the plain one; bob: one crm.
    assert rig.action.active == 4
    assert [r.status for r in await rig.runs("bob")].count(RunStatus.QUEUED) == 1


async def test_a_rate_limit_starts_runs_as_the_rolling_window_allows_and_wakes_then(
    rig: Rig,
) -> None:
    rig.action.hold = False
    rate = {"key": "crm", "limit": 2, "period": "1m"}
    for _ in range(5):
        await rig.tasks.create(OWNER, once(rate_limit=rate))
    fired = START + timedelta(seconds=10)
    await step_to(rig.engine, rig.clock, fired)
    await run_until_idle(rig.engine)
    assert len(rig.action.calls) == 2
    # The loop sleeps until the window lets the next start, not a poll and not a spin.
    assert rig.clock.next_deadline == fired + timedelta(minutes=1)
    await step_to(rig.engine, rig.clock, fired + timedelta(minutes=1) - timedelta(seconds=1))
    assert len(rig.action.calls) == 2
    await step_to(rig.engine, rig.clock, fired + timedelta(minutes=1))
    assert len(rig.action.calls) == 4
    await step_to(rig.engine, rig.clock, fired + timedelta(minutes=2))
    runs = await rig.runs()
    assert [r.status for r in runs] == [RunStatus.SUCCESS] * 5
    starts = sorted(r.started_at for r in runs if r.started_at is not None)
    assert starts == [fired] * 2 + [fired + timedelta(minutes=1)] * 2 + [
        fired + timedelta(minutes=2)
    ]
    # Never more than 2 starts in any window of a minute.
    for i, at in enumerate(starts):
        assert sum(1 for s in starts[i:] if s < at + timedelta(minutes=1)) <= 2


async def test_the_prune_forgets_starts_older_than_the_longest_period(rig: Rig) -> None:
    rig.action.hold = False
    rate = {"key": "crm", "limit": 5, "period": "1h"}
    for _ in range(2):
        await rig.tasks.create(OWNER, once(rate_limit=rate))
    await step_to(rig.engine, rig.clock, START + timedelta(seconds=10))
    long_ago = START - timedelta(days=30)
    assert len((await rig.store.flow_usage(OWNER, None, "crm", long_ago))[1]) == 2
    prune = {"runs_per_task": 100, "run_max_age": timedelta(days=90)}
    day_later = START + timedelta(hours=24)  # the two starts are 24 h old less 10 s
    await rig.store.prune(day_later, event_max_age=timedelta(days=90), **prune)
    assert len((await rig.store.flow_usage(OWNER, None, "crm", long_ago))[1]) == 2
    await rig.store.prune(
        day_later + timedelta(seconds=10), event_max_age=timedelta(days=90), **prune
    )
    assert (await rig.store.flow_usage(OWNER, None, "crm", long_ago))[1] == []


async def test_a_patch_sets_and_clears_the_limits(rig: Rig) -> None:
    task = (await rig.tasks.create(OWNER, once())).task
    assert task.concurrency is None and task.rate_limit is None
    patched = (
        await rig.tasks.patch(
            OWNER,
            task.id,
            TaskPatch(concurrency=CRM_2, rate_limit={"key": "crm", "limit": 10, "period": "1m"}),  # type: ignore[arg-type]
        )
    ).task
    assert patched.concurrency == CRM_2
    assert patched.rate_limit == {"key": "crm", "limit": 10, "period_s": 60.0}
    assert (await rig.store.get_task(OWNER, task.id)).rate_limit == patched.rate_limit
    cleared = (await rig.tasks.patch(OWNER, task.id, TaskPatch(concurrency=None))).task
    assert cleared.concurrency is None and cleared.rate_limit == patched.rate_limit


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("concurrency", {"key": "crm", "limit": 0}, "greater than or equal to 1"),
        ("concurrency", {"key": "has space", "limit": 2}, "pattern"),
        ("concurrency", {"limit": 2}, "key"),
        ("rate_limit", {"key": "crm", "limit": 10, "period": "0.5s"}, "between 1s and 24h"),
        ("rate_limit", {"key": "crm", "limit": 10, "period": "2d"}, "between 1s and 24h"),
        ("rate_limit", {"key": "crm", "limit": 10}, "period"),
    ],
)
async def test_bad_limits_are_refused_and_change_nothing(
    rig: Rig, field: str, value: dict[str, object], words: str
) -> None:
    task = (await rig.tasks.create(OWNER, once())).task
    with pytest.raises((ValidationError, InvalidInput)) as refused:
        await rig.tasks.create(OWNER, once(**{field: value}))
    assert words in str(refused.value)
    with pytest.raises((ValidationError, InvalidInput)):
        await rig.tasks.patch(OWNER, task.id, TaskPatch(**{field: value}))  # type: ignore[arg-type]
    assert [t.id for t in await rig.store.list_tasks(OWNER)] == [task.id]
    stored = await rig.store.get_task(OWNER, task.id)
    assert stored.concurrency is None and stored.rate_limit is None
