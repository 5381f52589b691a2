"""What tools and resources answer: pydantic models shaped for an agent to read.

Every view of a task echoes its time zone and its next fires, in that zone and in UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from wakecall.engine.schedule_cache import schedule_of
from wakecall.engine.service import BackfillReceipt
from wakecall.models import Delivery, Event, Run, RunStatus, Task
from wakecall.schedules import Schedule, format_duration
from wakecall.schedules import preview as preview_schedule
from wakecall.schedules.timeline import load_zone

__all__ = [
    "BackfillView",
    "DeleteResult",
    "DeliveryPage",
    "DeliveryView",
    "EventPage",
    "EventView",
    "FireTime",
    "PreviewView",
    "RunPage",
    "RunView",
    "TaskPage",
    "TaskView",
    "WakeupView",
    "backfill_view",
    "delivery_view",
    "event_view",
    "run_view",
    "task_view",
]

NEXT_FIRES = 3


class FireTime(BaseModel):
    local: datetime = Field(description="in the task's time zone")
    utc: datetime


class TriggerView(BaseModel):
    path: str = Field(description="POST events here on the HTTP server")
    per_minute: int = Field(description="more events a minute pause the task")


class TaskView(BaseModel):
    id: str
    name: str
    kind: Literal["task", "wakeup"]
    status: str = Field(description="active, paused, completed (no fires left) or expired")
    schedule: dict[str, Any]
    schedule_description: str
    timezone: str
    next_fires: list[FireTime] = Field(description="the next fires, empty when paused or ended")
    action: dict[str, Any]
    retry: dict[str, Any]
    timeout: str | None
    overlap: str
    max_queued: int
    catchup: str
    catchup_window: str
    max_runs: int | None
    run_count: int
    remaining_runs: int | None
    expires_at: datetime | None
    pause_after_failures: int | None = Field(
        None, description="the task pauses after this many failed runs in a row"
    )
    failure_streak: list[str] = Field(
        default_factory=list,
        description="the runs that failed in a row since the last success, oldest first "
        "(counted while pause_after_failures is set)",
    )
    pause_note: str | None
    end_reason: str | None
    callback_url: str | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    last_fire_at: datetime | None
    created: bool | None = Field(
        None, description="on create: false when an existing task was returned"
    )
    callback_secret: str | None = Field(
        None, description="the webhook signing secret; shown only when it is created"
    )
    depends_on: str | None = Field(None, description="runs after each success of this task")
    condition: dict[str, Any] | None = Field(None, description="the check before each attempt")
    concurrency: dict[str, Any] | None = None
    rate_limit: dict[str, Any] | None = None
    waiting: str | None = Field(None, description="why its due runs wait (flow control)")
    trigger: TriggerView | None = Field(None, description="inbound events, when turned on")
    trigger_secret: str | None = Field(
        None,
        description="the secret inbound events must sign with (or send as a bearer token); "
        "shown only when it is issued",
    )
    hint: str | None = None


class TaskPage(BaseModel):
    tasks: list[TaskView]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null at end")
    hint: str | None = None


class RunView(BaseModel):
    id: str
    task_id: str
    status: str
    trigger: str
    scheduled_for: datetime | None
    due_at: datetime
    attempt: int
    max_attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    output: Any = None
    error_message: str | None


class BackfillView(BaseModel):
    task_id: str
    timezone: str
    overlap: str
    dry_run: bool
    fires: int = Field(description="fires of the schedule in [from, to)")
    queued: int = Field(description="runs queued now (would be, in a dry run)")
    skipped: int = Field(description="slots recorded skipped (overlap skip)")
    already_backfilled: int = Field(description="slots a backfill queued before: nothing new")
    slots: list[datetime] | None = Field(
        None, description="dry run: each fire not yet backfilled, in the task's zone"
    )
    hint: str | None = None


def backfill_view(receipt: BackfillReceipt) -> BackfillView:
    runs = receipt.done.runs
    zone = load_zone(receipt.task.timezone)
    return BackfillView(
        task_id=receipt.task.id,
        timezone=receipt.task.timezone,
        overlap=str(receipt.overlap),
        dry_run=receipt.dry_run,
        fires=len(receipt.slots),
        queued=sum(1 for r in runs if r.status == RunStatus.QUEUED),
        skipped=sum(1 for r in runs if r.status == RunStatus.SKIPPED),
        already_backfilled=len(receipt.done.existing),
        slots=[r.scheduled_for.astimezone(zone) for r in runs if r.scheduled_for]
        if receipt.dry_run
        else None,
    )


class RunPage(BaseModel):
    runs: list[RunView] = Field(description="newest first")
    next_cursor: str | None
    hint: str | None = None


class EventView(BaseModel):
    cursor: int
    type: str
    task_id: str | None
    run_id: str | None
    created_at: datetime
    payload: dict[str, Any]


class EventPage(BaseModel):
    events: list[EventView] = Field(description="oldest first")
    cursor: int = Field(description="the newest cursor read; pass as `after` next time")
    more: bool = Field(description="true when more events wait after this page")


class WakeupView(BaseModel):
    wakeup_id: str
    scheduled_for: datetime
    scheduled_for_local: datetime
    timezone: str
    clamped: bool = Field(description="true when the time was moved into the allowed bounds")
    requested_for: datetime
    reason: str
    created: bool = Field(description="false when dedupe_key matched an existing wakeup")
    note: str | None = Field(None, description="says so when the time was moved, and where")
    hint: str | None = None


class PreviewView(BaseModel):
    description: str
    timezone: str
    fires: list[FireTime]


class DeliveryView(BaseModel):
    id: str = Field(description="the webhook-id, the same on every attempt")
    task_id: str | None
    event: str
    event_cursor: int
    url: str
    status: str = Field(description="pending, delivered or failed (dead-lettered)")
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPage(BaseModel):
    deliveries: list[DeliveryView] = Field(description="newest first")
    next_cursor: str | None
    hint: str | None = None


class DeleteResult(BaseModel):
    deleted: bool
    id: str
    hint: str | None = None


def next_fires(
    task: Task, count: int = NEXT_FIRES, schedule: Schedule | None = None
) -> list[FireTime]:
    """The task's next fires from its stored next fire on, in its zone and in UTC."""
    if task.next_fire_at is None:
        return []
    after = task.next_fire_at - timedelta(microseconds=1)
    shown = preview_schedule(schedule or schedule_of(task), count=count, after=after)
    return [FireTime(local=f.local, utc=f.utc) for f in shown.fires]


def task_view(task: Task, **extra: Any) -> TaskView:
    schedule = schedule_of(task)
    return TaskView(
        id=task.id,
        name=task.name,
        kind=task.kind,
        status=str(task.status),
        schedule=task.schedule,
        schedule_description=schedule.describe(),
        timezone=task.timezone,
        next_fires=next_fires(task, schedule=schedule),
        action=task.action,
        retry=task.retry.model_dump(mode="json"),
        timeout=None if task.timeout_s is None else format_duration(_seconds(task.timeout_s)),
        overlap=str(task.overlap),
        max_queued=task.max_queued,
        catchup=str(task.catchup),
        catchup_window=format_duration(_seconds(task.catchup_window_s)),
        max_runs=task.max_runs,
        run_count=task.run_count,
        remaining_runs=task.remaining_runs,
        expires_at=task.expires_at,
        pause_after_failures=task.pause_after_failures,
        failure_streak=list(task.failure_streak),
        pause_note=task.pause_note,
        end_reason=task.end_reason,
        callback_url=task.callback_url,
        metadata=task.metadata,
        created_at=task.created_at,
        updated_at=task.updated_at,
        last_fire_at=task.last_fire_at,
        depends_on=task.depends_on,
        condition=task.condition,
        concurrency=task.concurrency,
        rate_limit=None
        if task.rate_limit is None
        else {
            "key": task.rate_limit["key"],
            "limit": task.rate_limit["limit"],
            "period": format_duration(_seconds(float(task.rate_limit["period_s"]))),
        },
        trigger=None
        if task.trigger is None
        else TriggerView(
            path=f"/triggers/{task.id}", per_minute=int(task.trigger.get("per_minute", 60))
        ),
        **extra,
    )


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


def run_view(run: Run) -> RunView:
    return RunView(
        id=run.id,
        task_id=run.task_id,
        status=str(run.status),
        trigger=str(run.trigger),
        scheduled_for=run.scheduled_for,
        due_at=run.due_at,
        attempt=run.attempt,
        max_attempts=run.max_attempts,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_ms=run.duration_ms,
        output=run.output,
        error_message=run.error_message,
    )


def event_view(event: Event) -> EventView:
    return EventView(
        cursor=event.cursor,
        type=str(event.type),
        task_id=event.task_id,
        run_id=event.run_id,
        created_at=event.created_at,
        payload=event.payload,
    )


def delivery_view(delivery: Delivery) -> DeliveryView:
    return DeliveryView(
        id=delivery.id,
        task_id=delivery.task_id,
        event=str(delivery.event_type),
        event_cursor=delivery.event_cursor,
        url=delivery.url,
        status=str(delivery.status),
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        last_status=delivery.last_status,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
    )
