"""The examples refusals show: a value for each argument and a call for each tool, computed
from the current time, so that a model following one is not refused again for a date that has
passed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from wakecall.schedules import future_instant

__all__ = ["call_example", "value_example"]

#: An id as the model finds it; the example says where.
_TASK_ID = '"tsk_…" (list_tasks shows the ids of your tasks)'

_VALUES = {
    "name": '"standup reminder"',
    "schedule": '"0 9 * * MON-FRI", "@every 30m", "in 5m" or {"type": "daily", "times": ["09:00"]}',
    "timezone": '"Europe/Paris", "America/New_York" or "UTC"',
    "action": '{"type": "webhook", "url": "https://app.example.com/hooks/report"}',
    "type": '"wakeup", "webhook", "command" or "noop"',
    "reason": '"check the deploy"',
    "context": '{"pr": 42}',
    "url": '"https://app.example.com/hooks/report"',
    "method": '"POST"',
    "headers": '{"X-Team": "ops"}',
    "body": '{"report": "daily"}',
    "argv": '["/usr/local/bin/report", "--daily"]',
    "cwd": '"/srv/reports"',
    "env": '{"MODE": "daily"}',
    "retry": '{"attempts": 3, "backoff": "exponential", "delay": "10s"}',
    "attempts": "3",
    "backoff": '"exponential"',
    "delay": '"10s"',
    "max_delay": '"1h"',
    "jitter": '"30s"',
    "timeout": '"30s"',
    "catchup_window": '"1h"',
    "in": '"15m"',
    "overlap": '"skip", "queue", "cancel_previous" or "allow"',
    "max_queued": "1",
    "catchup": '"latest", "all" or "skip"',
    "max_runs": "10",
    "active": "true",
    "callback_url": '"https://app.example.com/hooks/wakecall"',
    "metadata": '{"team": "ops"}',
    "idempotency_key": '"weekly-report"',
    "depends_on": _TASK_ID,
    "trigger": '{"per_minute": 60}',
    "per_minute": "60",
    "condition": '{"url": "https://app.example.com/should-run"}',
    "task_id": _TASK_ID,
    "wakeup_id": '"tsk_…" (the wakeup_id schedule_wakeup answered)',
    "delivery_id": '"msg_…" (list_deliveries shows them)',
    "note": '"vendor API down"',
    "kind": '"task" or "wakeup"',
    "cursor": "the next_cursor of the previous page",
    "limit": "20",
    "after": "the cursor of the last event you read, such as 41",
    "wait": "30",
    "count": "5",
    "dedupe_key": '"poll-ci"',
    "rotate_callback_secret": "true",
    "clear": '["max_runs", "timeout"]',
}

_STATUSES = {
    "list_tasks": '"active", "paused", "completed" or "expired"',
    "list_runs": '"failure"',
    "list_deliveries": '"pending", "delivered" or "failed"',
}


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def value_example(tool: str, field: str, now: datetime) -> str | None:
    """A value that works for the argument (or nested field) named `field` of `tool`."""
    if field == "status":
        return _STATUSES.get(tool)
    if field == "at":
        return f'"{_utc(now + timedelta(hours=1))}"'
    if tool == "backfill" and field in ("from", "to"):
        return f'"{_utc(now - timedelta(days=1 if field == "from" else 0))}"'
    if tool == "backfill" and field == "overlap":
        return '"queue", "skip" or "allow"'
    if field == "dry_run":
        return "true"
    if field in ("expires_at", "start"):
        return f'"{future_instant(now, days=30)}"'
    return _VALUES.get(field)


def call_example(tool: str, now: datetime) -> str:
    """A whole call of `tool` that works (ids aside: they are the caller's own)."""
    calls: dict[str, object] = {
        "create_task": {
            "name": "standup reminder",
            "schedule": "0 9 * * MON-FRI",
            "timezone": "America/New_York",
            "action": {"type": "wakeup", "reason": "post the standup summary"},
        },
        "list_tasks": {"status": "active", "metadata": {"team": "ops"}},
        "patch_schedule": {"task_id": "tsk_…", "schedule": "*/5 * * * *"},
        "pause": {"task_id": "tsk_…", "note": "vendor API down"},
        "list_runs": {"task_id": "tsk_…", "status": "failure"},
        "schedule_wakeup": {
            "at": _utc(now + timedelta(hours=1)),
            "reason": "check the deploy",
            "context": {"pr": 42},
        },
        "cancel_wakeup": {"wakeup_id": "tsk_…"},
        "get_events": {"after": 41, "wait": 30},
        "preview_schedule": {
            "schedule": "0 9 * * MON-FRI",
            "timezone": "America/New_York",
            "count": 5,
        },
        "list_deliveries": {"status": "failed"},
        "redeliver": {"delivery_id": "msg_…"},
        "backfill": {
            "task_id": "tsk_…",
            "from": _utc(now - timedelta(days=1)),
            "to": _utc(now),
        },
    }
    call = calls.get(tool, {"task_id": "tsk_…"})
    return json.dumps(call, ensure_ascii=False)
