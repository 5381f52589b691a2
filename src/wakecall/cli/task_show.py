"""One task in full (`tasks show`, and after `add`, `patch`, ...), and the texts of a task's
parts that other commands show too."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from wakecall.cli.context import Context
from wakecall.cli.output import Cell, Output, local_text, relative, short_schedule, utc_text
from wakecall.models import Overlap, RetryPolicy, Run, Task
from wakecall.schedules import format_duration
from wakecall.server.views import run_view, task_view

__all__ = [
    "action_text",
    "failures_text",
    "last_run",
    "last_run_text",
    "overlap_text",
    "retry_text",
    "runs_text",
    "show_task",
]


async def last_run(ctx: Context, task: Task) -> Run | None:
    """The task's newest run, if it has one."""
    runs = await ctx.service.list_runs(ctx.owner, task_id=task.id, limit=1)
    return runs[0] if runs else None


def last_run_text(run: Run | None, now: datetime, out: Output | None = None) -> Cell:
    """`5m ago success`, `running since 2s`, `queued`; coloured by its status with `out`."""
    if run is None:
        return "-"
    status = str(run.status)
    if status == "queued":
        text = "queued"
    elif status == "running":
        text = f"running since {relative(run.started_at, now).removesuffix(' ago')}"
    else:
        when = run.finished_at or run.started_at or run.created_at
        text = f"{relative(when, now)} {status}"
        if run.attempt > 1:
            text += f" (attempt {run.attempt})"
    return Output.status(status, text) if out is not None else text


async def show_task(ctx: Context, task: Task, **extra: Any) -> None:
    """The task in full as `label: value` lines (JSON with `--json`); `extra` goes to the view
    (`created`, secrets shown once)."""
    view = task_view(task, **extra)
    last = await last_run(ctx, task)
    if ctx.out.json_mode:
        data = view.model_dump(mode="json", exclude_none=False)
        data["last_run"] = None if last is None else run_view(last).model_dump(mode="json")
        ctx.out.json(data)
        return
    now = ctx.now()
    status = str(task.status)
    note = task.pause_note or task.end_reason
    pairs: list[tuple[str, Cell | list[Cell]]] = [
        ("id", task.id),
        ("name", task.name),
        ("status", Output.status(status, status + (f" ({note})" if note else ""))),
    ]
    if task.kind == "wakeup":
        pairs.append(("kind", "wakeup"))
    pairs += [
        ("schedule", f"{short_schedule(task.schedule)}: {view.schedule_description}"),
        ("time zone", task.timezone),
        (
            "next fires",
            [
                f"{local_text(f.local)}  ({utc_text(f.utc)}, {relative(f.utc, now)})"
                for f in view.next_fires
            ],
        ),
        ("action", action_text(task.action)),
        ("retry", retry_text(task.retry)),
        ("timeout", f"{view.timeout} per attempt" if view.timeout else "none"),
        ("overlap", overlap_text(task)),
        ("catch-up", f"{view.catchup} (window {view.catchup_window})"),
        ("runs", runs_text(task)),
        ("pause after", failures_text(task)),
        ("expires at", utc_text(task.expires_at) if task.expires_at else "never"),
        ("callback", task.callback_url or "none"),
        ("metadata", json.dumps(task.metadata, ensure_ascii=False) if task.metadata else "none"),
        ("last run", last_run_text(last, now, ctx.out)),
        ("created", utc_text(task.created_at)),
        ("updated", utc_text(task.updated_at)),
    ]
    if task.depends_on:
        pairs.append(("depends on", f"{task.depends_on} (runs after each of its successes)"))
    if view.trigger is not None:
        pairs.append(
            ("inbound events", f"POST {view.trigger.path}, at most {view.trigger.per_minute}/min")
        )
    if task.condition:
        pairs.append(
            ("condition", f"{task.condition.get('method', 'POST')} {task.condition['url']}")
        )
    if task.concurrency:
        limit = task.concurrency
        pairs.append(("concurrency", f"key {limit['key']}, at most {limit['limit']} at once"))
    if view.rate_limit:
        rate = view.rate_limit
        pairs.append(
            ("rate limit", f"key {rate['key']}, {rate['limit']} starts per {rate['period']}")
        )
    if view.callback_secret:
        pairs.append(("callback secret", (f"{view.callback_secret} (shown once)", "bold")))
    if view.trigger_secret:
        pairs.append(("trigger secret", (f"{view.trigger_secret} (shown once)", "bold")))
    ctx.out.fields(pairs)


def action_text(action: Mapping[str, Any]) -> str:
    kind = action.get("type")
    if kind == "webhook":
        text = f"webhook {action.get('method', 'POST')} {action.get('url')}"
        headers = action.get("headers") or {}
        if headers:
            text += f", headers {', '.join(sorted(headers))}"
        if action.get("body") is not None:
            text += ", a JSON body"
        if action.get("timeout") is not None:
            text += f", request timeout {action['timeout']:g}s"
        return text
    if kind == "command":
        text = "command " + shlex.join(action.get("argv") or [])
        if action.get("cwd"):
            text += f" (in {action['cwd']})"
        if action.get("env"):
            text += f", env {', '.join(sorted(action['env']))}"
        return text
    if kind == "wakeup":
        text = f"wakeup: {action.get('reason') or '(no reason)'}"
        return text + (", with a context" if action.get("context") is not None else "")
    return str(kind)


def retry_text(retry: RetryPolicy) -> str:
    if retry.attempts == 1:
        return "no retries (1 attempt)"
    text = (
        f"{retry.attempts - 1} retries ({retry.attempts} attempts), {retry.backoff} backoff "
        f"from {format_duration(retry.delay)} up to {format_duration(retry.max_delay)}"
    )
    return text + (" with jitter" if retry.jitter else "")


def overlap_text(task: Task) -> str:
    queued = f" (up to {task.max_queued} queued)" if task.overlap == Overlap.QUEUE else ""
    return f"{task.overlap}{queued}"


def failures_text(task: Task) -> str:
    """`3 failed runs in a row (1 so far: run_…)`, or `never` without pause_after_failures."""
    limit = task.pause_after_failures
    if limit is None:
        return "never"
    text = f"{limit} failed run{'s' if limit != 1 else ''} in a row"
    streak = task.failure_streak
    if streak:
        text += f" ({len(streak)} so far: {', '.join(streak)})"
    return text


def runs_text(task: Task) -> str:
    text = f"{task.run_count} counted"
    if task.max_runs is not None:
        text += f" of at most {task.max_runs} ({task.remaining_runs} left)"
    return text
