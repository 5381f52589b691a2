"""The checks a task passes before it is stored, as pure functions: each takes what it judges
and the current instant, and returns what to write or raises a `WakecallError` saying what was
wrong and what would be right. `TaskService` and the task-file plan call the same functions, so
a dry run and the real thing can never disagree.

What needs the store (the owner's task limit, ids already taken, chains) is checked by the
store inside the transaction that writes (`Store.write_tasks`) or by `TaskService`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Hashable, Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from wakecall.actions.policy import ActionPolicy
from wakecall.config import EngineConfig
from wakecall.delivery.signing import new_secret
from wakecall.engine.schedule_cache import schedule_of
from wakecall.errors import Conflict, InvalidInput, InvalidSchedule
from wakecall.ids import new_id
from wakecall.models import (
    Task,
    TaskPatch,
    TaskSpec,
    TaskStatus,
    TriggerSpec,
    WakeupAction,
    WebhookAction,
)
from wakecall.schedules import OnDemandSchedule, Schedule, parse_duration, parse_schedule

__all__ = [
    "ENDED",
    "ENDED_MUTABLE",
    "TASK_ID_PATTERN",
    "ParsedSchedules",
    "check_sizes",
    "check_task_id",
    "json_size",
    "new_task",
    "new_trigger",
    "patch_changes",
    "pause_changes",
    "resume_changes",
]

#: Statuses of a task that will not run again.
ENDED = (TaskStatus.COMPLETED, TaskStatus.EXPIRED)
#: What an ended task still lets change.
ENDED_MUTABLE = frozenset({"name", "metadata", "callback_url"})
#: An id chosen by an operator (`wakecall tasks add --id`, task files): safe in URIs and paths.
TASK_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
MAX_NOTE = 2000


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _week_from(now: datetime) -> str:
    """An `expires_at` example that works today."""
    return _iso(now + timedelta(days=7))


def check_task_id(task_id: str) -> None:
    if not TASK_ID_PATTERN.fullmatch(task_id):
        raise InvalidInput(
            f"{task_id!r} is not a valid task id: use 1 to 100 letters, digits, '_', '.' or "
            "'-', starting with a letter or digit",
            field="id",
            example='"nightly-report"',
        )


def new_trigger(spec: TriggerSpec) -> dict[str, Any]:
    """A task's inbound-event settings, with a new secret (shown to the caller once)."""
    return {"secret": new_secret(), "per_minute": spec.per_minute}


def parse_for(
    schedule: str | Mapping[str, Any],
    *,
    timezone: str | None,
    jitter: str | float | timedelta | None,
    now: datetime,
    config: EngineConfig,
) -> Schedule:
    """A schedule as the server parses it: within the operator's shortest interval."""
    return parse_schedule(
        schedule, timezone=timezone, now=now, jitter=jitter, min_interval=config.min_interval
    )


def _first_fire(schedule: Schedule, now: datetime, what: str) -> datetime | None:
    first = schedule.next_after(now)
    if first is None and not isinstance(schedule, OnDemandSchedule):
        raise InvalidSchedule(
            f"{what} has no fire after now",
            field="schedule",
            example=f'"in 5m", "0 9 * * MON-FRI" or "{_iso(now + timedelta(hours=1))}"',
        )
    return first


class ParsedSchedules:
    """Schedules parsed against one instant, each distinct one once, with its first fire: the
    tasks of a file of 100,000 name far fewer schedules. Schedules are frozen, so one parse
    serves every task that names it."""

    def __init__(self, now: datetime, config: EngineConfig) -> None:
        self.now = now
        self.config = config
        self._parsed: dict[tuple[Any, ...], tuple[Schedule, datetime | None]] = {}
        self._specs: dict[tuple[Any, ...], tuple[dict[str, Any], bool]] = {}

    def parse(
        self,
        schedule: str | Mapping[str, Any],
        *,
        timezone: str | None,
        jitter: str | float | timedelta | None,
    ) -> tuple[Schedule, datetime | None]:
        """The schedule as `parse_for` parses it, and its first fire after `now` (a schedule
        with none raises `InvalidSchedule`, as `new_task` does)."""
        key = (json_key(schedule), timezone, jitter)
        found = self._parsed.get(key)
        if found is None:
            parsed = parse_for(
                schedule, timezone=timezone, jitter=jitter, now=self.now, config=self.config
            )
            found = (parsed, _first_fire(parsed, self.now, "the schedule"))
            self._parsed[key] = found
        return found

    def stored_form(
        self,
        schedule: str | Mapping[str, Any],
        *,
        timezone: str | None,
        jitter: str | float | timedelta | None,
    ) -> tuple[dict[str, Any], bool]:
        """The schedule as a task stores it (`to_spec`) when parsed at `now`, and whether it
        is written relative to the time it is parsed at ("in 5m", an interval without a
        start: parsed an hour later, it differs). Raises `InvalidInput` as `parse_for` does."""
        key = (json_key(schedule), timezone, jitter)
        found = self._specs.get(key)
        if found is None:
            at_now = self._spec_at(schedule, timezone, jitter, self.now)
            try:
                later = self._spec_at(schedule, timezone, jitter, self.now + timedelta(hours=1))
            except InvalidInput:
                later = at_now
            found = (at_now, later != at_now)
            self._specs[key] = found
        return found

    def _spec_at(
        self,
        schedule: str | Mapping[str, Any],
        timezone: str | None,
        jitter: str | float | timedelta | None,
        at: datetime,
    ) -> dict[str, Any]:
        parsed = parse_for(schedule, timezone=timezone, jitter=jitter, now=at, config=self.config)
        return parsed.to_spec()


def json_key(value: Any) -> Hashable:
    """A key equal for equal JSON values and only for them: key order in a table does not
    count, and each value's type does (`1`, `1.0` and `true` are different keys, as they are
    different JSON, though Python holds them equal)."""
    if isinstance(value, dict):
        return (dict, frozenset((k, json_key(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return (list, tuple(json_key(v) for v in value))
    return (type(value), value) if isinstance(value, Hashable) else (type(value), repr(value))


def json_size(value: Any) -> int:
    """Bytes of `value` as compact JSON (what is stored)."""
    if isinstance(value, dict | list) and not value:
        return 2  # `{}` or `[]`: most tasks' metadata, not worth an encoder
    return len(json.dumps(value, separators=(",", ":"), default=str).encode())


def _within(value: Any, limit: int, what: str, setting: str, example: str) -> None:
    size = json_size(value)
    if size > limit:
        raise InvalidInput(
            f"{what} is {size:,} bytes of JSON; this server keeps at most {limit:,} "
            f"(its {setting})",
            field=what,
            example=example,
        )


def check_sizes(
    config: EngineConfig, *, metadata: Any = None, action: BaseModel | None = None
) -> None:
    """Refuse metadata and action parts larger than the operator allows."""
    if metadata is not None:
        _within(metadata, config.max_metadata_bytes, "metadata", "max_metadata_bytes",
                '{"team": "ops"}')  # fmt: skip
    if isinstance(action, WakeupAction) and action.context is not None:
        _within(action.context, config.max_context_bytes, "action.context",
                "max_context_bytes", '{"pr": 42}')  # fmt: skip
    if isinstance(action, WebhookAction):
        if action.body is not None:
            _within(action.body, config.max_body_bytes, "action.body", "max_body_bytes",
                    '{"report": "daily"}')  # fmt: skip
        headers = sum(len(k) + len(v) for k, v in action.headers.items())
        if headers > config.max_headers_bytes:
            raise InvalidInput(
                f"action.headers are {headers:,} bytes (names and values); this server keeps "
                f"at most {config.max_headers_bytes:,} (its max_headers_bytes)",
                field="action.headers",
                example='{"Authorization": "Bearer <token>"}',
            )


def new_task(
    owner: str,
    spec: TaskSpec,
    *,
    now: datetime,
    config: EngineConfig,
    policy: ActionPolicy,
    kind: str = "task",
    task_id: str | None = None,
    schedules: ParsedSchedules | None = None,
) -> Task:
    """The task `spec` makes, checked against the operator's policy and the current time
    (`schedules`: the schedules parsed so far against `now`, for tasks made together)."""
    if task_id is not None:
        check_task_id(task_id)
    policy.check_spec(spec)
    check_sizes(config, metadata=spec.metadata, action=spec.action)
    zone = spec.timezone if "timezone" in spec.model_fields_set else None
    if schedules is None:
        schedules = ParsedSchedules(now, config)
    schedule, first = schedules.parse(spec.schedule, timezone=zone, jitter=spec.jitter)
    _check_expiry(spec.expires_at, first, now)
    active = spec.active
    return Task(
        id=task_id or new_id("tsk"),
        owner=owner,
        name=spec.name,
        kind="wakeup" if kind == "wakeup" else "task",
        schedule=schedule.to_spec(),
        timezone=schedule.timezone,
        action=spec.action.model_dump(mode="json"),
        retry=spec.retry,
        timeout_s=None if spec.timeout is None else spec.timeout.total_seconds(),
        overlap=spec.overlap,
        max_queued=spec.max_queued,
        catchup=spec.catchup,
        catchup_window_s=spec.catchup_window.total_seconds(),
        max_runs=spec.max_runs,
        expires_at=spec.expires_at,
        status=TaskStatus.ACTIVE if active else TaskStatus.PAUSED,
        pause_note=None if active else "created paused",
        callback_url=spec.callback_url,
        metadata=spec.metadata,
        idempotency_key=spec.idempotency_key,
        created_at=now,
        updated_at=now,
        next_fire_at=first if active else None,
        last_fire_at=None,
        run_count=0,
        depends_on=spec.depends_on,
        trigger=None if spec.trigger is None else new_trigger(spec.trigger),
        condition=None if spec.condition is None else spec.condition.model_dump(mode="json"),
        pause_after_failures=spec.pause_after_failures,
        concurrency=None if spec.concurrency is None else spec.concurrency.to_record(),
        rate_limit=None if spec.rate_limit is None else spec.rate_limit.to_record(),
    )


def _check_expiry(expires_at: datetime | None, first: datetime | None, now: datetime) -> None:
    if expires_at is None:
        return
    if expires_at <= now:
        raise InvalidInput("expires_at is in the past", field="expires_at", example=_week_from(now))
    if first is not None and first > expires_at:
        raise InvalidInput(
            f"expires_at ({_iso(expires_at)}) comes before the first fire ({_iso(first)}), so "
            "the task would never run",
            field="expires_at",
            example=_iso(first + timedelta(days=7)),
        )


def patch_changes(
    task: Task, patch: TaskPatch, *, now: datetime, config: EngineConfig, policy: ActionPolicy
) -> dict[str, Any]:
    """The stored fields `patch` changes on `task`, checked (a new schedule, zone or jitter
    recomputes the next fire). Fields not given are left alone."""
    given = patch.model_fields_set
    frozen = sorted(given - ENDED_MUTABLE)
    if task.status in ENDED and frozen:
        raise Conflict(
            f"task {task.id} has ended ({task.status}"
            f"{', ' + task.end_reason if task.end_reason else ''}); only its name, metadata "
            f"and callback_url can still change, not {', '.join(frozen)}. Create a new task "
            "to schedule more runs."
        )
    policy.check_patch(patch)
    check_sizes(config, metadata=patch.metadata, action=patch.action)
    changes: dict[str, Any] = {}
    if given & {"schedule", "timezone", "jitter"}:
        changes.update(_schedule_changes(task, patch, now, config))
    _copy_given(patch, changes)
    if "max_runs" in given:
        if patch.max_runs is not None and patch.max_runs <= task.run_count:
            raise InvalidInput(
                f"max_runs must be above the {task.run_count} runs already made, or null for "
                "no limit",
                field="max_runs",
                example=str(task.run_count + 10),
            )
        changes["max_runs"] = patch.max_runs
    if "expires_at" in given:
        if patch.expires_at is not None and patch.expires_at <= now:
            raise InvalidInput(
                "expires_at is in the past", field="expires_at", example=_week_from(now)
            )
        changes["expires_at"] = patch.expires_at
    return changes


def _copy_given(patch: TaskPatch, changes: dict[str, Any]) -> None:
    """The fields a patch sets as given (a null where null means "none")."""
    given = patch.model_fields_set
    for name in ("name", "retry", "overlap", "max_queued", "catchup", "metadata"):
        if name in given and getattr(patch, name) is not None:
            changes[name] = getattr(patch, name)
    for name in ("callback_url", "depends_on"):
        if name in given:
            changes[name] = getattr(patch, name)
    if "action" in given and patch.action is not None:
        changes["action"] = patch.action.model_dump(mode="json")
    if "timeout" in given:
        changes["timeout_s"] = None if patch.timeout is None else patch.timeout.total_seconds()
    if "catchup_window" in given and patch.catchup_window is not None:
        changes["catchup_window_s"] = patch.catchup_window.total_seconds()
    if "trigger" in given:
        changes["trigger"] = None if patch.trigger is None else new_trigger(patch.trigger)
    if "pause_after_failures" in given:
        # A new limit (or none) counts from now: a lower one never pauses the task at once.
        changes["pause_after_failures"] = patch.pause_after_failures
        changes["failure_streak"] = ()
    if "condition" in given:
        condition = patch.condition
        changes["condition"] = None if condition is None else condition.model_dump(mode="json")
    for name in ("concurrency", "rate_limit"):
        if name in given:
            limit = getattr(patch, name)
            changes[name] = None if limit is None else limit.to_record()


def _schedule_changes(
    task: Task, patch: TaskPatch, now: datetime, config: EngineConfig
) -> dict[str, Any]:
    given = patch.model_fields_set
    source: str | Mapping[str, Any] = (
        patch.schedule if patch.schedule is not None else task.schedule
    )
    if "timezone" in given and patch.timezone is not None:
        zone: str | None = patch.timezone
    elif "schedule" in given and isinstance(source, str):
        zone = task.timezone
    elif "schedule" in given:
        zone = None if "timezone" in source else task.timezone
    else:
        zone = task.timezone
    jitter: timedelta | None
    if "jitter" in given:
        jitter = patch.jitter
    else:
        stored = task.schedule.get("jitter")
        jitter = None if stored is None else parse_duration(stored)
    if isinstance(source, Mapping) and "schedule" not in given:
        source = {k: v for k, v in source.items() if k not in ("timezone", "jitter")}
    schedule = parse_for(source, timezone=zone, jitter=jitter, now=now, config=config)
    first = _first_fire(schedule, now, "the new schedule")
    changes: dict[str, Any] = {"schedule": schedule.to_spec(), "timezone": schedule.timezone}
    if task.status == TaskStatus.ACTIVE:
        changes["next_fire_at"] = first
    return changes


def pause_changes(task: Task, note: str | None) -> dict[str, Any]:
    if task.status in ENDED:
        raise Conflict(f"task {task.id} has ended ({task.status}); there is nothing to pause")
    if note is not None and len(note) > MAX_NOTE:
        raise InvalidInput(
            f"note is {len(note)} characters; at most {MAX_NOTE}",
            field="note",
            example='"vendor API down until Monday"',
        )
    return {"status": TaskStatus.PAUSED, "pause_note": note, "next_fire_at": None}


def resume_changes(task: Task, now: datetime, schedule: Schedule | None = None) -> dict[str, Any]:
    """Resume from now: fires missed while paused are not replayed, and failed runs are counted
    afresh toward `pause_after_failures`. `schedule`: the task's schedule as it will be (a
    task file may change it in the same step)."""
    if task.status in ENDED:
        raise Conflict(f"task {task.id} has ended ({task.status}); create a new task instead")
    schedule = schedule or schedule_of(task)
    first = schedule.next_after(now)
    # An on-demand task has no fire to wait for: it runs on run_now, events, or after the
    # task it depends on.
    if first is None and not isinstance(schedule, OnDemandSchedule):
        raise Conflict(
            f"task {task.id} has no fire after now (its only fire passed while it was paused); "
            'patch_schedule it to a new time, e.g. {"schedule": "in 5m"}'
        )
    if task.expires_at is not None and first is not None and first > task.expires_at:
        raise Conflict(
            f"task {task.id} would next fire after its expires_at ({_iso(task.expires_at)}); "
            f'patch expires_at first, e.g. {{"expires_at": "{_iso(first + timedelta(days=7))}"}}'
        )
    return {
        "status": TaskStatus.ACTIVE,
        "pause_note": None,
        "next_fire_at": first,
        "failure_streak": (),
    }
