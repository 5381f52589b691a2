"""The task view as text: what `show_tasks` answers to hosts that do not render MCP Apps (and
the text part of its answer to those that do, which the model reads)."""

from __future__ import annotations

from datetime import datetime, timedelta

from wakecall.schedules import format_duration
from wakecall.server.ui.snapshot import Dashboard, DeliveryRow, RunRow, TaskRow

__all__ = ["dashboard_text"]


def _when(moment: datetime) -> str:
    """`Tue 3 Dec 09:00 CET`: in the zone `moment` carries."""
    return f"{moment:%a} {moment.day} {moment:%b %H:%M} {moment.tzname() or ''}".rstrip()


def _utc(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _ms(value: int) -> str:
    return format_duration(timedelta(milliseconds=value))


def _run_line(run: RunRow) -> str:
    when = run.scheduled_for or run.created_at
    parts = [f"{_utc(when)} {run.status}"]
    if run.trigger != "schedule":
        parts.append(f"({run.trigger})")
    if run.duration_ms is not None:
        parts.append(f"in {_ms(run.duration_ms)}")
    if run.late_ms:
        parts.append(f"started {_ms(run.late_ms)} late")
    if run.attempt > 1:
        parts.append(f"attempt {run.attempt} of {run.max_attempts}")
    line = " ".join(parts)
    if run.error_message:
        line += f": {run.error_message}"
    return f"  - {line} [{run.id}]"


def _task_line(task: TaskRow) -> str:
    line = f"- {task.name} [{task.id}] {task.status}: {task.schedule} ({task.timezone})"
    if task.next_fires:
        first = task.next_fires[0]
        line += f"; next {_when(first.local)} ({_utc(first.utc)})"
    if task.pause_note:
        line += f"; paused: {task.pause_note}"
    if task.end_reason:
        line += f"; ended: {task.end_reason}"
    if task.last_run is not None:
        line += f"; last run {task.last_run.status}"
    return line


def _delivery_line(delivery: DeliveryRow) -> str:
    task = delivery.task_name or delivery.task_id or "?"
    line = f"  - {delivery.event} of {task} to {delivery.url}, {delivery.attempts} attempts"
    if delivery.last_error or delivery.last_status:
        line += f", last: {delivery.last_error or delivery.last_status}"
    if delivery.next_attempt_at is not None and delivery.status == "pending":
        line += f", next try {_utc(delivery.next_attempt_at)}"
    return f"{line} [{delivery.id}]"


def dashboard_text(board: Dashboard) -> str:
    """Every part of the view, one line per task, run and callback."""
    if not board.tasks:
        lines = ["No tasks yet: create_task or schedule_wakeup make one."]
    else:
        more = " (the first ones; filter with list_tasks)" if board.more_tasks else ""
        lines = [f"{len(board.tasks)} tasks{more}; next fires in each task's zone (UTC):"]
        lines += [_task_line(t) for t in board.tasks]
    names = {t.id: t.name for t in board.tasks}
    if board.selected is not None:
        name = names.get(board.selected, board.selected)
        if board.runs:
            lines.append(f"Runs of {name}, newest first (UTC):")
            lines += [_run_line(r) for r in board.runs]
        else:
            lines.append(f"{name} has not run yet.")
    for title, rows in (
        ("Callbacks being retried", board.pending),
        ("Dead-lettered callbacks (redeliver sends one again)", board.dead),
    ):
        if rows:
            lines.append(f"{title}:")
            lines += [_delivery_line(d) for d in rows]
    if not board.pending and not board.dead:
        lines.append("No callback is pending or dead-lettered.")
    return "\n".join(lines)
