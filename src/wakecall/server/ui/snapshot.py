"""What the task view shows, read through the task service: the owner's tasks with their next
fires, one task's run history, and the callbacks that are pending or dead-lettered.

The same `Dashboard` answers the `show_tasks` tool (its structured content, for hosts that
render the MCP App) and `GET /ui/api/dashboard` (the operators' page)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from wakecall.engine.schedule_cache import schedule_of
from wakecall.models import Delivery, DeliveryStatus, Run, Task
from wakecall.server.views import FireTime, next_fires

if TYPE_CHECKING:
    from wakecall.server.runtime import Runtime

__all__ = ["Dashboard", "DeliveryRow", "RunRow", "TaskRow", "read_dashboard"]

#: How many tasks, runs of the chosen task, recent runs and callbacks of each kind are shown.
MAX_TASKS = 200
MAX_RUNS = 30
RECENT_RUNS = 200
MAX_DELIVERIES = 20
#: Next fires shown per task.
FIRES = 3


class RunRow(BaseModel):
    id: str
    task_id: str
    status: str
    trigger: str
    scheduled_for: datetime | None = Field(description="the fire; null for a manual run")
    due_at: datetime
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    late_ms: int | None = Field(description="how long after its fire (or request) it started")
    attempt: int
    max_attempts: int
    error_message: str | None


class TaskRow(BaseModel):
    id: str
    name: str
    kind: str
    status: str
    schedule: str = Field(description="the schedule in words")
    timezone: str
    next_fires: list[FireTime]
    pause_note: str | None
    end_reason: str | None
    run_count: int
    max_runs: int | None
    last_run: RunRow | None = Field(description="the newest of the recent runs, if any")


class DeliveryRow(BaseModel):
    id: str
    task_id: str | None
    task_name: str | None
    event: str
    url: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime


class Dashboard(BaseModel):
    owner: str
    now: datetime
    cursor: int = Field(description="the owner's newest event; changes after it mean news")
    tasks: list[TaskRow]
    more_tasks: bool = Field(description=f"true when the owner has over {MAX_TASKS} tasks")
    selected: str | None = Field(description="the task whose runs are listed")
    runs: list[RunRow] = Field(description="the selected task's runs, newest first")
    pending: list[DeliveryRow] = Field(description="callbacks being retried, newest first")
    dead: list[DeliveryRow] = Field(description="dead-lettered callbacks, newest first")


def run_row(run: Run) -> RunRow:
    late_ms = None
    if run.started_at is not None:
        origin = run.scheduled_for or run.created_at
        late_ms = max(int((run.started_at - origin).total_seconds() * 1000), 0)
    return RunRow(
        id=run.id,
        task_id=run.task_id,
        status=str(run.status),
        trigger=str(run.trigger),
        scheduled_for=run.scheduled_for,
        due_at=run.due_at,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_ms=run.duration_ms,
        late_ms=late_ms,
        attempt=run.attempt,
        max_attempts=run.max_attempts,
        error_message=run.error_message,
    )


def task_row(task: Task, last_run: Run | None) -> TaskRow:
    schedule = schedule_of(task)
    return TaskRow(
        id=task.id,
        name=task.name,
        kind=task.kind,
        status=str(task.status),
        # The zone is a column of its own.
        schedule=schedule.describe().removesuffix(f" ({task.timezone})"),
        timezone=task.timezone,
        next_fires=next_fires(task, FIRES, schedule=schedule),
        pause_note=task.pause_note,
        end_reason=task.end_reason,
        run_count=task.run_count,
        max_runs=task.max_runs,
        last_run=None if last_run is None else run_row(last_run),
    )


def delivery_row(delivery: Delivery, names: dict[str, str]) -> DeliveryRow:
    return DeliveryRow(
        id=delivery.id,
        task_id=delivery.task_id,
        task_name=None if delivery.task_id is None else names.get(delivery.task_id),
        event=str(delivery.event_type),
        url=delivery.url,
        status=str(delivery.status),
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        last_status=delivery.last_status,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
    )


async def read_dashboard(rt: Runtime, owner: str, task_id: str | None = None) -> Dashboard:
    """The owner's dashboard; `task_id` chooses whose runs are listed (default: the task with
    the newest run, else the first task). An unknown `task_id` is `TaskNotFound`."""
    service = rt.tasks
    cursor = await rt.inbox.store.latest_cursor(owner)
    tasks = await service.list_tasks(owner, limit=MAX_TASKS + 1)
    more = len(tasks) > MAX_TASKS
    tasks = tasks[:MAX_TASKS]
    recent = await service.list_runs(owner, limit=RECENT_RUNS)
    last: dict[str, Run] = {}
    for run in recent:  # newest first: the first seen is the newest
        last.setdefault(run.task_id, run)
    if task_id is not None:
        if not any(t.id == task_id for t in tasks):
            await service.get(owner, task_id)  # raises TaskNotFound for another owner's id
    elif recent:
        task_id = recent[0].task_id
    elif tasks:
        task_id = tasks[0].id
    runs = (
        [] if task_id is None else await service.list_runs(owner, task_id=task_id, limit=MAX_RUNS)
    )
    names = {t.id: t.name for t in tasks}
    pending = await service.list_deliveries(
        owner, status=DeliveryStatus.PENDING, limit=MAX_DELIVERIES
    )
    dead = await service.list_deliveries(owner, status=DeliveryStatus.FAILED, limit=MAX_DELIVERIES)
    return Dashboard(
        owner=owner,
        now=service.now(),
        cursor=cursor,
        tasks=[task_row(t, last.get(t.id)) for t in tasks],
        more_tasks=more,
        selected=task_id,
        runs=[run_row(r) for r in runs],
        pending=[delivery_row(d, names) for d in pending],
        dead=[delivery_row(d, names) for d in dead],
    )
