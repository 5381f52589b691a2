"""Store records for the store tests: a task as the engine would have stored it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from wakecall.ids import new_id
from wakecall.models import CatchUp, Overlap, RetryPolicy, Task, TaskStatus

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
