"""A new task wakes the engine only when it can be due before the engine would look again:
a server answering `create_task` for tasks due next year does not make a pass for each
(each pass competed with the tool's own reads). Driven by a fake clock over every store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from wakecall.engine import Engine, EngineConfig
from wakecall.models import NoopAction, RunStatus, TaskPatch, TaskSpec
from wakecall.store import Store
from wakecall.testing import FakeClock, run_until_idle, service_for

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
async def engine(store: Store) -> AsyncIterator[Engine]:
    config = EngineConfig(poll_interval=timedelta(hours=1), prune_every=timedelta(days=1))
    with anyio.fail_after(20):
        async with Engine(store, clock=FakeClock(START), config=config) as running:
            await run_until_idle(running)
            yield running


def _spec(schedule: str, **changes: object) -> TaskSpec:
    return TaskSpec(name="job", schedule=schedule, action=NoopAction(), **changes)  # type: ignore[arg-type]


async def _statuses(store: Store) -> list[RunStatus]:
    return [r.status for r in await store.list_runs("alice", limit=100)]


async def test_a_task_due_after_the_engines_deadline_lets_it_sleep(
    engine: Engine, store: Store
) -> None:
    tasks = service_for(engine)
    await tasks.create("alice", _spec("in 2h"))
    await tasks.create("alice", _spec("in 5m", active=False))  # paused: nothing to fire
    assert engine.is_idle()  # not woken: it looks again at its poll, in an hour
    clock = engine.clock
    assert isinstance(clock, FakeClock)
    clock.set(START + timedelta(hours=2))
    await run_until_idle(engine)
    assert await _statuses(store) == [RunStatus.SUCCESS]


async def test_a_task_due_before_it_wakes_the_engine_and_runs_on_time(
    engine: Engine, store: Store
) -> None:
    tasks = service_for(engine)
    await tasks.create("alice", _spec("in 10s"))
    assert not engine.is_idle()  # woken
    await run_until_idle(engine)
    clock = engine.clock
    assert isinstance(clock, FakeClock)
    clock.set(START + timedelta(seconds=10))
    await run_until_idle(engine)
    assert await _statuses(store) == [RunStatus.SUCCESS]


async def test_a_change_always_wakes_the_engine(engine: Engine) -> None:
    tasks = service_for(engine)
    made = (await tasks.create("alice", _spec("in 2h"))).task
    await run_until_idle(engine)
    await tasks.patch("alice", made.id, TaskPatch(name="renamed"))
    assert not engine.is_idle()
