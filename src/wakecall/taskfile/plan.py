"""Applying a task file: each task it names ends up as the file says, all in one transaction.

The plan compares each file task with the store and builds the writes (`engine.checks` makes
every check `TaskService` would make, against the same instant); `TaskService.write` then makes
them together, the owner's task limit judged inside the transaction. A dry run makes the very
same writes and rolls them back, so it cannot disagree with the real apply; a file with any
problem, or a write the store refuses, changes nothing.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from wakecall.delivery.signing import new_secret
from wakecall.engine import TaskService, checks
from wakecall.engine.service import MAX_CHAIN
from wakecall.errors import Conflict, InvalidInput, LimitReached, TaskNotFound
from wakecall.models import RetryPolicy, Task, TaskPatch, TaskSpec, TaskStatus
from wakecall.schedules import parse_duration
from wakecall.store.base import NewTask, TaskDeletion, TaskUpdate, TaskWrite, TaskWritten
from wakecall.taskfile.format import RETRY_KEYS, field_path, schedule_value
from wakecall.taskfile.reading import FileTask, Problems, nearest_line, read_file
from wakecall.taskfile.report import ApplyReport, Op, TaskChange

__all__ = ["apply_file", "apply_tasks"]


@dataclass(frozen=True)
class _Step:
    """One task's part of the apply: what the report says, and the write (None: unchanged)."""

    change: TaskChange
    write: TaskWrite | None = None


async def apply_file(
    service: TaskService,
    owner: str,
    path: str | Path,
    *,
    prune: bool = False,
    dry_run: bool = False,
) -> ApplyReport:
    """Apply a task file to `owner`'s tasks (see the module docstring); the report says what
    happened to each task. Raises `TaskFileError` (nothing applied) listing every problem in
    the file or between the file and the store, `InvalidInput` when the file cannot be read,
    and `StoreError` when the store fails (nothing applied either)."""
    with _no_cycle_collection():
        tasks, problems = read_file(path)
    return await _apply(service, owner, tasks, problems, prune=prune, dry_run=dry_run)


async def apply_tasks(
    service: TaskService,
    owner: str,
    tasks: Sequence[FileTask],
    *,
    source: str,
    prune: bool = False,
    dry_run: bool = False,
) -> ApplyReport:
    """`apply_file` for tasks already read (`parse_task_file`)."""
    return await _apply(service, owner, tasks, Problems(source), prune=prune, dry_run=dry_run)


async def _apply(
    service: TaskService,
    owner: str,
    tasks: Sequence[FileTask],
    problems: Problems,
    *,
    prune: bool,
    dry_run: bool,
) -> ApplyReport:
    source = problems.source
    now = service.now()
    # The owner's tasks in one read (not one per file task): a file of 100,000 tasks.
    current = {t.id: t for t in await service.list_all(owner)}
    steps: list[_Step] = []
    schedules = checks.ParsedSchedules(now, service.config)
    with _no_cycle_collection():
        for task in tasks:
            try:
                found = current.get(task.id)
                steps.append(_plan(service, owner, found, task, source, schedules))
            except (InvalidInput, Conflict) as exc:
                _add_problem(problems, task, exc)
    named = {t.id for t in tasks}
    others = [t for t in current.values() if t.kind == "task" and t.id not in named]
    for task, problem in _chain_problems(tasks, list(current.values())):
        line = nearest_line(task.key_lines, ("depends_on",))
        problems.add(problem, line=line, task_id=task.id)
    if prune:
        steps += [_deletion(t) for t in others]
    problems.raise_if_any()
    writes = [s.write for s in steps if s.write is not None]
    try:
        written = await service.write(owner, writes, dry_run=dry_run, rates=False)
    except Conflict as exc:
        # Most likely a new task's id that another owner's task has: said at its line.
        await _find_taken_ids(service, tasks, steps, problems)
        if not problems:
            problems.add(str(exc))
        problems.raise_if_any()
        raise  # unreachable: a problem was just added
    except (LimitReached, TaskNotFound) as exc:
        problems.add(str(exc))
        problems.raise_if_any()
        raise  # unreachable: a problem was just added
    unnamed = () if prune else tuple(t.id for t in others)
    changes = _reported(steps, iter(written))
    return ApplyReport(source, owner, dry_run, tuple(changes), unnamed)


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Reading and planning a large file make objects by the million, and none of them in
    a reference cycle; the cycle collector, which runs every 700 of them and walks the older
    ones again and again, doubled the time of a 100,000-task file. It is off meanwhile (this
    code never awaits inside)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _reported(steps: Sequence[_Step], written: Any) -> list[TaskChange]:
    """Each step's change, with the task's status as written and any secret it was given."""
    changes = []
    for step in steps:
        change = step.change
        if step.write is not None:
            result: TaskWritten = next(written)
            status = change.status if result.task is None else str(result.task.status)
            change = TaskChange(
                change.op,
                change.id,
                change.name,
                change.fields,
                status,
                change.line,
                _secret_of(step.write),
                _trigger_secret_of(step, result),
            )
        changes.append(change)
    return changes


def _secret_of(write: TaskWrite) -> str | None:
    return None if isinstance(write, TaskDeletion) else write.callback_secret


def _trigger_secret_of(step: _Step, result: TaskWritten) -> str | None:
    """The inbound-event secret a new task, or a task whose trigger changed, was given."""
    if result.task is None or result.task.trigger is None:
        return None
    if step.change.op == "create" or "trigger" in step.change.fields:
        return str(result.task.trigger.get("secret"))
    return None


def _chain_problems(
    tasks: Sequence[FileTask], stored: Sequence[Task]
) -> list[tuple[FileTask, str]]:
    """Each file task whose `depends_on` names no task of the owner (in the store or in the
    file), makes a cycle, or ends a chain longer than `MAX_CHAIN`."""
    upstream_of: dict[str, str | None] = {t.id: t.depends_on for t in stored}
    upstream_of.update({t.id: t.spec.depends_on for t in tasks})
    found = []
    for task in tasks:
        seen = [task.id]
        current = task.spec.depends_on
        while current is not None:
            if current not in upstream_of:
                found.append((task, f"depends_on names {current!r}, which is neither in the "
                              "file nor one of your tasks; give the id of one"))  # fmt: skip
                break
            if current in seen:
                found.append((task, f"depends_on makes a cycle ({' -> '.join([*seen, current])})"))
                break
            seen.append(current)
            if len(seen) > MAX_CHAIN:
                found.append((task, f"the chain above {task.id!r} is longer than {MAX_CHAIN}"))
                break
            current = upstream_of[current]
    return found


def _deletion(task: Task) -> _Step:
    change = TaskChange("delete", task.id, task.name, status=str(task.status))
    return _Step(change, TaskDeletion(task.id))


def _add_problem(problems: Problems, task: FileTask, exc: InvalidInput | Conflict) -> None:
    line = nearest_line(task.key_lines, field_path(getattr(exc, "field", None)))
    problems.add(str(exc), line=line, task_id=task.id)


async def _find_taken_ids(
    service: TaskService, tasks: Sequence[FileTask], steps: Sequence[_Step], problems: Problems
) -> None:
    """The file's new tasks whose id a task of another owner has, each a problem at its line
    (looked up one by one, only once the writes were refused)."""
    new = {s.change.id for s in steps if isinstance(s.write, NewTask)}
    for task in tasks:
        if task.id not in new:
            continue
        try:
            await service.get(None, task.id)
        except TaskNotFound:
            continue
        taken = Conflict(f"id {task.id!r} belongs to a task of another owner; choose another id")
        _add_problem(problems, task, taken)


def _plan(
    service: TaskService,
    owner: str,
    current: Task | None,
    task: FileTask,
    source: str,
    schedules: checks.ParsedSchedules,
) -> _Step:
    """What applying `task` takes (`current`: the owner's task of its id, if any), checked as
    the service checks it; nothing written."""
    if current is None:
        return _plan_new(service, owner, task, schedules)
    if current.kind != "task":
        raise Conflict(
            f"{task.id} is a wakeup, not a task; a task file cannot manage it (give the task "
            "another id)"
        )
    return _plan_change(service, current, task, source, schedules)


def _plan_new(
    service: TaskService, owner: str, task: FileTask, schedules: checks.ParsedSchedules
) -> _Step:
    spec = task.spec
    made = checks.new_task(
        owner,
        spec,
        now=schedules.now,
        config=service.config,
        policy=service.policy,
        task_id=task.id,
        schedules=schedules,
    )
    status = "active" if spec.active else "paused"
    change = TaskChange("create", task.id, spec.name, status=status, line=task.line)
    secret = new_secret() if spec.callback_url is not None else None
    return _Step(change, NewTask(made, secret))


def _plan_change(
    service: TaskService,
    current: Task,
    task: FileTask,
    source: str,
    schedules: checks.ParsedSchedules,
) -> _Step:
    spec = task.spec
    now = schedules.now
    names, patch = _diff(current, spec, schedules)
    # An empty patch changes nothing and breaks no rule: most tasks of a file applied again.
    changes = {}
    if patch:
        changes = checks.patch_changes(
            current,
            TaskPatch.model_validate(patch),
            now=now,
            config=service.config,
            policy=service.policy,
        )
    ended = current.status in checks.ENDED
    if not ended and not spec.active and current.status == TaskStatus.ACTIVE:
        changes.update(checks.pause_changes(current, f"disabled in {source}"))
        names.append("enabled")
    elif not ended and spec.active and current.status == TaskStatus.PAUSED:
        changes.update(checks.resume_changes(current.replace(**changes), now))
        names.append("enabled")
    status = str(changes.get("status", current.status))
    op: Op = "change" if names else "unchanged"
    change = TaskChange(op, task.id, spec.name, tuple(names), status, task.line)
    if not names:
        return _Step(change)
    secret = new_secret() if current.callback_url is None and spec.callback_url else None
    return _Step(change, TaskUpdate(current.id, changes, current.status, secret))


def _diff(
    task: Task, spec: TaskSpec, schedules: checks.ParsedSchedules
) -> tuple[list[str], dict[str, Any]]:
    """The file fields in which `spec` differs from `task`, and the patch that applies them."""
    names: list[str] = []
    patch: dict[str, Any] = {}

    def differs(name: str, value: Any, same: bool) -> None:
        if not same:
            names.append(name)
            patch[name] = value

    differs("name", spec.name, spec.name == task.name)
    for name, value in _schedule_diff(task, spec, schedules):
        names.append(name)
        patch[name] = value
    differs("action", spec.action, spec.action.model_dump(mode="json") == task.action)
    retry_names = [
        RETRY_KEYS[k]
        for k in RetryPolicy.model_fields
        if getattr(spec.retry, k) != getattr(task.retry, k)
    ]
    if retry_names:
        names.extend(retry_names)
        patch["retry"] = spec.retry
    differs("timeout", spec.timeout, spec.timeout == _seconds(task.timeout_s))
    differs("overlap", spec.overlap, spec.overlap == task.overlap)
    differs("max_queued", spec.max_queued, spec.max_queued == task.max_queued)
    differs("catchup", spec.catchup, spec.catchup == task.catchup)
    window = _seconds(task.catchup_window_s)
    differs("catchup_window", spec.catchup_window, spec.catchup_window == window)
    differs("max_runs", spec.max_runs, spec.max_runs == task.max_runs)
    limit = spec.pause_after_failures
    differs("pause_after_failures", limit, limit == task.pause_after_failures)
    differs("expires_at", spec.expires_at, spec.expires_at == task.expires_at)
    differs("callback_url", spec.callback_url, spec.callback_url == task.callback_url)
    differs("metadata", spec.metadata, spec.metadata == task.metadata)
    differs("depends_on", spec.depends_on, spec.depends_on == task.depends_on)
    stored_rate = None if task.trigger is None else task.trigger.get("per_minute")
    given_rate = None if spec.trigger is None else spec.trigger.per_minute
    differs("trigger", spec.trigger, given_rate == stored_rate)
    condition = None if spec.condition is None else spec.condition.model_dump(mode="json")
    differs("condition", spec.condition, condition == task.condition)
    for name in ("concurrency", "rate_limit"):
        given = getattr(spec, name)
        differs(name, given, (None if given is None else given.to_record()) == getattr(task, name))
    return names, patch


def _schedule_diff(
    task: Task, spec: TaskSpec, schedules: checks.ParsedSchedules
) -> list[tuple[str, Any]]:
    """("schedule" | "timezone" | "jitter", patch value) for each that differs."""
    stored = task.schedule
    zone = spec.timezone if "timezone" in spec.model_fields_set else None
    stored_jitter = None if stored.get("jitter") is None else parse_duration(stored["jitter"])
    if (
        spec.schedule == schedule_value(stored)
        and (zone or _mapping_zone(spec.schedule)) == task.timezone
        and spec.jitter == stored_jitter
    ):
        return []  # written as `export` writes it: equal without a look at the clock
    try:
        new, relative = schedules.stored_form(spec.schedule, timezone=zone, jitter=spec.jitter)
    except InvalidInput as exc:
        raise InvalidInput(str(exc), field="schedule") from None
    if relative:
        # written relative to now ("in 5m", an interval without a start): the task keeps
        # the anchor it already has
        new = {**new, **{k: stored[k] for k in ("start", "at") if k in new and k in stored}}
    changed: list[tuple[str, Any]] = []
    if _core(new) != _core(stored):
        changed.append(("schedule", spec.schedule))
    if new.get("timezone") != stored.get("timezone"):
        changed.append(("timezone", new.get("timezone")))
    if new.get("jitter") != stored.get("jitter"):
        changed.append(("jitter", spec.jitter))
    return changed


def _core(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k not in ("timezone", "jitter")}


def _mapping_zone(schedule: object) -> str:
    if isinstance(schedule, Mapping) and isinstance(schedule.get("timezone"), str):
        return str(schedule["timezone"])
    return "UTC"


def _seconds(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)
