"""What events carry: the payload of a run's or a task's event, which is also the body of its
callback (without `event` and `timestamp`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from wakecall.models.records import Run, Task
from wakecall.models.statuses import EventType, RunStatus

__all__ = [
    "event_type_for",
    "run_event_payload",
    "task_event_payload",
    "task_stats",
    "task_summary",
]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def task_summary(task: Task) -> dict[str, Any]:
    return {"id": task.id, "name": task.name, "metadata": task.metadata}


def task_stats(task: Task, run_count: int | None = None) -> dict[str, Any]:
    """The task's counts; `run_count` in place of its own (the task as a fire leaves it)."""
    if run_count is None:
        run_count = task.run_count
    return {
        "totalRuns": run_count,
        "remainingRuns": None if task.max_runs is None else max(task.max_runs - run_count, 0),
        "expiresAt": _iso(task.expires_at),
    }


def run_event_payload(task: Task, run: Run, *, run_count: int | None = None) -> dict[str, Any]:
    """The payload of a run's event: the callback shape without `event` and `timestamp`
    (which the event carries itself), plus the fire it was for, how late the run came when
    its fire was recorded late (`late`; None for a missed run, which did not run) and, for
    wakeups, the reason and context the agent left for itself. `run_count`: the task's, if
    not its own (a fire recorded in the same transaction moved it on)."""
    payload: dict[str, Any] = {
        "task": task_summary(task),
        "run": {
            "id": run.id,
            "status": str(run.status),
            "output": run.output,
            "errorMessage": run.error_message,
            "durationMs": run.duration_ms,
            "attempt": run.attempt,
            "trigger": str(run.trigger),
            "scheduledFor": _iso(run.scheduled_for),
            "input": run.input,
        },
        "stats": task_stats(task, run_count),
        "reason": None,
        "late": None if run.status == RunStatus.MISSED else _lateness(run),
    }
    if task.action.get("type") == "wakeup":
        payload["wakeup"] = {
            "reason": task.action.get("reason", ""),
            "context": task.action.get("context"),
        }
    return payload


#: A fire recorded more than this after its time is late (its run's event says so).
_LATE_AFTER = timedelta(minutes=1)


def _lateness(run: Run) -> dict[str, Any] | None:
    """How late the run's fire was recorded, when more than `_LATE_AFTER`: `byS`, the seconds
    after its time, and `reason`: `catchup` (the scheduler was not running, or the machine
    was asleep, when it came due, and ran it when it caught up). None for a fire on time or
    a run with no fire (manual, chained, an inbound event)."""
    if run.scheduled_for is None:
        return None
    late_by = run.created_at - run.scheduled_for
    if late_by <= _LATE_AFTER:
        return None
    return {"byS": round(late_by.total_seconds(), 3), "reason": "catchup"}


def task_event_payload(task: Task, reason: str | None) -> dict[str, Any]:
    """The payload of a task-level event such as `task.expired`."""
    return {"task": task_summary(task), "run": None, "stats": task_stats(task), "reason": reason}


def event_type_for(task: Task, run: Run) -> EventType:
    if run.status == RunStatus.SUCCESS:
        return EventType.WAKEUP_FIRED if task.kind == "wakeup" else EventType.RUN_COMPLETED
    if run.status == RunStatus.MISSED:
        return EventType.RUN_MISSED
    if run.status == RunStatus.SKIPPED:
        return EventType.RUN_SKIPPED
    return EventType.RUN_FAILED
