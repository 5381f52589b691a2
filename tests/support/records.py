"""Store records for the store tests: a task as the engine would have stored it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from wakecall.ids import new_id
from wakecall.models import CatchUp, Overlap, RetryPolicy, Task, TaskStatus
from wakecall.store.task_writes import NewTask, TaskDeletion, TaskUpdate

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def make_task(owner: str = "alice", **changes: Any) -> Task:
    """An active task of `owner`, due at `T0` every minute, with `changes` applied."""
    base = Task(
        id=new_id("tsk"),
        owner=owner,
        name="report",
        kind="task",
        schedule={"kind": "interval", "every": "1m", "start": T0.isoformat(), "timezone": "UTC"},
        timezone="UTC",
        action={"type": "noop"},
        retry=RetryPolicy(attempts=2),
        timeout_s=None,
        overlap=Overlap.SKIP,
        max_queued=1,
        catchup=CatchUp.LATEST,
        catchup_window_s=3600.0,
        max_runs=None,
        expires_at=None,
        status=TaskStatus.ACTIVE,
        pause_note=None,
        callback_url=None,
        metadata={"team": "ops"},
        idempotency_key=None,
        created_at=T0,
        updated_at=T0,
        next_fire_at=T0,
        last_fire_at=None,
        run_count=0,
    )
    return base.replace(**changes)


# --- task writes for the store tests (the stores write tasks through `write_tasks` only) ----
async def add_task(store: Any, task: Task, now: datetime = T0) -> tuple[Task, bool]:
    """Insert `task` as `TaskService` does; (the task, whether it was inserted), the
    owner's task of the same idempotency key otherwise."""
    (written,) = await store.write_tasks(task.owner, [NewTask(task)], now)
    return written.task, written.created


async def update_task(
    store: Any, owner: str | None, task_id: str, changes: Mapping[str, Any], now: datetime
) -> Task:
    """Set these fields of the task (of `owner`; of whoever owns it when None)."""
    if owner is None:
        owner = (await store.get_task(None, task_id)).owner
    (written,) = await store.write_tasks(owner, [TaskUpdate(task_id, changes)], now)
    return written.task


async def delete_task(store: Any, owner: str | None, task_id: str) -> list[str]:
    """Delete the task; the ids of its runs that were running."""
    if owner is None:
        owner = (await store.get_task(None, task_id)).owner
    (written,) = await store.write_tasks(owner, [TaskDeletion(task_id)], T0)
    return list(written.running)


async def count_tasks(store: Any, owner: str, *, active_only: bool = False) -> int:
    """How many tasks the owner has (active or paused ones only when asked)."""
    tasks = await store.list_tasks(owner, limit=1_000_000)
    live = (TaskStatus.ACTIVE, TaskStatus.PAUSED)
    return sum(1 for t in tasks if not active_only or t.status in live)
