"""A paused on-demand task (a chain step, or a task started by inbound events) can be resumed.

Found: `resume` wanted a fire after now and refused a task without a schedule of its own as
"no fire after now (its only fire passed while it was paused)", so a trigger task paused by
its circuit breaker, or any chain step paused by hand, could never run again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wakecall.engine import EngineConfig, TaskService
from wakecall.models import TaskSpec, TaskStatus, TriggerSpec
from wakecall.store import SQLiteStore
from wakecall.testing import FakeClock


@pytest.fixture
async def tasks(tmp_path: Path) -> AsyncIterator[TaskService]:
    store = SQLiteStore(tmp_path / "w.db")
    await store.open()
    try:
        yield TaskService(store, clock=FakeClock(), config=EngineConfig())
    finally:
        await store.close()


async def test_a_paused_task_with_no_schedule_of_its_own_resumes(tasks: TaskService) -> None:
    spec = TaskSpec(name="inbound", schedule="on demand", trigger=TriggerSpec(per_minute=5))
    task = (await tasks.create("alice", spec)).task
    await tasks.pause("alice", task.id, "circuit breaker")
    resumed = await tasks.resume("alice", task.id)
    assert resumed.status == TaskStatus.ACTIVE and resumed.next_fire_at is None
    assert resumed.pause_note is None
