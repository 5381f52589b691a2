"""Writing a task file: an owner's tasks as TOML (written by `tomli_w`) that `apply` reads back
unchanged."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import tomli_w

from wakecall.engine.checks import ENDED
from wakecall.models import RetryPolicy, Task, TaskStatus
from wakecall.schedules import format_duration
from wakecall.taskfile.format import schedule_value

__all__ = ["export_tasks"]


def export_tasks(tasks: Iterable[Task], *, header: str | None = None) -> tuple[str, list[str]]:
    """The tasks (wakeups left out) as a task file that `apply` reads back unchanged, and
    warnings for values TOML cannot hold (JSON nulls inside metadata, bodies or contexts,
    which are left out)."""
    warnings: list[str] = []
    out: list[str] = []
    if header:
        out += [f"# {line}" if line else "#" for line in header.splitlines()]
        out.append("")
    for task in tasks:
        if task.kind != "task":
            continue
        if task.status in ENDED:
            reason = f" ({task.end_reason})" if task.end_reason else ""
            out.append(f"# {task.status}{reason}: this task will not run again")
        entry = _without_nulls(_entry(task), (), task.id, warnings)
        out.append(tomli_w.dumps({"tasks": [entry]}))
    return "\n".join(out).rstrip("\n") + "\n", warnings


def _entry(task: Task) -> dict[str, Any]:
    stored = task.schedule
    entry: dict[str, Any] = {
        "id": task.id,
        "name": task.name,
        "schedule": schedule_value(stored),
        "timezone": task.timezone,
    }
    if stored.get("jitter") is not None:
        entry["jitter"] = stored["jitter"]
    if task.status not in ENDED:
        entry["enabled"] = task.status == TaskStatus.ACTIVE
    for key in ("max_runs", "expires_at", "callback_url"):
        if getattr(task, key) is not None:
            entry[key] = getattr(task, key)
    if task.metadata:
        entry["metadata"] = task.metadata
    if task.depends_on is not None:
        entry["depends_on"] = task.depends_on
    if task.trigger is not None:
        entry["trigger"] = {"per_minute": task.trigger.get("per_minute", 60)}  # not the secret
    if task.condition is not None:
        entry["condition"] = dict(task.condition)
    if task.concurrency is not None:
        entry["concurrency"] = dict(task.concurrency)
    if task.rate_limit is not None:
        rate = task.rate_limit
        period = format_duration(timedelta(seconds=float(rate["period_s"])))
        entry["rate_limit"] = {"key": rate["key"], "limit": rate["limit"], "period": period}
    entry["action"] = {k: v for k, v in task.action.items() if v is not None and v != {}}
    entry["execution"] = _execution(task)
    return entry


def _execution(task: Task) -> dict[str, Any]:
    retry = task.retry
    execution: dict[str, Any] = {}
    if task.timeout_s is not None:
        execution["timeout"] = format_duration(timedelta(seconds=task.timeout_s))
    execution["retries"] = retry.attempts - 1
    execution["retry_delay"] = format_duration(retry.delay)
    defaults = RetryPolicy()
    if retry.backoff != defaults.backoff:
        execution["retry_backoff"] = retry.backoff
    if retry.max_delay != defaults.max_delay:
        execution["retry_max_delay"] = format_duration(retry.max_delay)
    if retry.jitter != defaults.jitter:
        execution["retry_jitter"] = retry.jitter
    execution["overlap"] = str(task.overlap)
    if task.max_queued != 1:
        execution["max_queued"] = task.max_queued
    execution["catchup"] = str(task.catchup)
    execution["catchup_window"] = format_duration(timedelta(seconds=task.catchup_window_s))
    if task.pause_after_failures is not None:
        execution["pause_after_failures"] = task.pause_after_failures
    return execution


def _without_nulls(value: Any, path: tuple[str, ...], task_id: str, warnings: list[str]) -> Any:
    """`value` with the JSON nulls TOML cannot hold left out, each with a warning."""
    if isinstance(value, Mapping):
        kept = {}
        for key, item in value.items():
            where = (*path, str(key))
            if item is None:
                warnings.append(_dropped(task_id, where))
            else:
                kept[str(key)] = _without_nulls(item, where, task_id, warnings)
        return kept
    if isinstance(value, list | tuple):
        items = []
        for index, item in enumerate(value):
            where = (*path, str(index))
            if item is None:
                warnings.append(_dropped(task_id, where))
            else:
                items.append(_without_nulls(item, where, task_id, warnings))
        return items
    return value


def _dropped(task_id: str, path: tuple[str, ...]) -> str:
    return f"task {task_id!r}: {'.'.join(path)} is null, which TOML cannot hold; it was left out"
