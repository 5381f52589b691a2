"""The operations agents and operators perform on tasks, with every check made before anything
is written: a refused request changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from wakecall.delivery.signing import new_secret
from wakecall.errors import Conflict, InvalidInput, InvalidSchedule, LimitReached, TaskNotFound
from wakecall.ids import new_id
from wakecall.models import (
    EventType,
    Run,
    RunStatus,
    Task,
    TaskPatch,
    TaskSpec,
    TaskStatus,
    Trigger,
    TriggerSpec,
    WakeupAction,
    task_event_payload,
)
from wakecall.schedules import OnDemandSchedule, Schedule, parse_duration, parse_schedule
from wakecall.store.base import NewEvent, NewRun

if TYPE_CHECKING:
    from wakecall.engine.scheduler import Engine

__all__ = ["TASK_ID_PATTERN", "TaskService", "WakeupReceipt"]

_ENDED = (TaskStatus.COMPLETED, TaskStatus.EXPIRED)

#: The longest chain of `depends_on` above a task.
MAX_CHAIN = 50


def new_trigger(spec: TriggerSpec) -> dict[str, Any]:
    """A task's inbound-event settings, with a new secret (shown to the caller once)."""
    return {"secret": new_secret(), "per_minute": spec.per_minute}


#: An id chosen by an operator (`wakecall tasks add --id`, task files): safe in URIs and paths.
TASK_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


@dataclass(frozen=True)
class WakeupReceipt:
    task: Task
    scheduled_for: datetime
    clamped: bool
    requested: datetime
    created: bool


def _check_callback_url(url: str | None) -> None:
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            f"callback_url {url!r} is not an http(s) URL",
            field="callback_url",
            example='"https://app.example.com/hooks/wakecall"',
        )


class TaskService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def _store(self) -> Any:
        return self.engine.store

    def _now(self) -> datetime:
        return self.engine.clock.now()

    def parse(
        self,
        schedule: str | Mapping[str, Any],
        *,
        timezone: str | None,
        jitter: timedelta | None,
        now: datetime,
    ) -> Schedule:
        return parse_schedule(
            schedule,
            timezone=timezone,
            now=now,
            jitter=jitter,
            min_interval=self.engine.config.min_interval,
        )

    # --- create ---------------------------------------------------------------------------
    async def create(
        self, owner: str, spec: TaskSpec, *, kind: str = "task", task_id: str | None = None
    ) -> tuple[Task, bool]:
        """Create a task (or return the owner's existing one with the same idempotency key).

        `task_id` names the task instead of a generated `tsk_` id (operators and task files
        use it to address a task by a stable name); `Conflict` when a task (of any owner) has
        that id already."""
        if task_id is not None and not TASK_ID_PATTERN.fullmatch(task_id):
            raise InvalidInput(
                f"{task_id!r} is not a valid task id: use 1 to 100 letters, digits, '_', '.' "
                "or '-', starting with a letter or digit",
                field="id",
                example='"nightly-report"',
            )
        now = self._now()
        zone = spec.timezone if "timezone" in spec.model_fields_set else None
        schedule = self.parse(spec.schedule, timezone=zone, jitter=spec.jitter, now=now)
        first = schedule.next_after(now)
        if first is None and not isinstance(schedule, OnDemandSchedule):
            raise InvalidSchedule(
                "the schedule has no fire after now",
                field="schedule",
                example='"in 5m" or "0 9 * * MON-FRI"',
            )
        new_id_ = task_id or new_id("tsk")
        if spec.depends_on is not None:
            await self._check_chain(owner, new_id_, spec.depends_on)
        if spec.expires_at is not None and spec.expires_at <= now:
            raise InvalidInput(
                "expires_at is in the past",
                field="expires_at",
                example=(now + timedelta(days=7)).isoformat().replace("+00:00", "Z"),
            )
        if spec.expires_at is not None and first is not None and first > spec.expires_at:
            raise InvalidInput(
                f"expires_at ({spec.expires_at.isoformat()}) comes before the first fire "
                f"({first.isoformat()}), so the task would never run",
                field="expires_at",
            )
        _check_callback_url(spec.callback_url)
        limit = self.engine.config.max_tasks_per_owner
        if await self._store.count_tasks(owner, active_only=True) >= limit:
            raise LimitReached(
                f"you already have {limit} tasks, the most one owner may hold; delete tasks "
                "you no longer need (list_tasks shows them)"
            )
        if task_id is not None:
            try:
                await self._store.get_task(None, task_id)
            except TaskNotFound:
                pass
            else:
                raise Conflict(f"a task with id {task_id!r} exists already; choose another id")
        active = spec.active
        task = Task(
            id=new_id_,
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
        )
        stored, created = await self._store.create_task(task)
        if created:
            self.engine.wake()
        return stored, created

    # --- read -----------------------------------------------------------------------------
    async def get(self, owner: str | None, task_id: str) -> Task:
        return await self._store.get_task(owner, task_id)

    # --- change ---------------------------------------------------------------------------
    async def patch(self, owner: str, task_id: str, patch: TaskPatch) -> Task:
        """Change any mutable field; a new schedule, zone or jitter recomputes the next fire."""
        task = await self.get(owner, task_id)
        now = self._now()
        given = patch.model_fields_set
        if not given:
            raise InvalidInput(
                "nothing to change: give at least one field",
                example='{"schedule": "*/10 * * * *"}',
            )
        if task.status in _ENDED and given - {"name", "metadata", "callback_url"}:
            raise Conflict(
                f"task {task.id} has ended ({task.status}"
                f"{', ' + task.end_reason if task.end_reason else ''}); only its name, metadata "
                "and callback_url can still change. Create a new task to schedule more runs."
            )
        changes: dict[str, Any] = {}
        if given & {"schedule", "timezone", "jitter"}:
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
            schedule = self.parse(source, timezone=zone, jitter=jitter, now=now)
            first = schedule.next_after(now)
            if first is None and not isinstance(schedule, OnDemandSchedule):
                raise InvalidSchedule(
                    "the new schedule has no fire after now", field="schedule", example='"in 5m"'
                )
            changes["schedule"] = schedule.to_spec()
            changes["timezone"] = schedule.timezone
            if task.status == TaskStatus.ACTIVE:
                changes["next_fire_at"] = first
        if "name" in given and patch.name is not None:
            changes["name"] = patch.name
        if "action" in given and patch.action is not None:
            changes["action"] = patch.action.model_dump(mode="json")
        if "retry" in given and patch.retry is not None:
            changes["retry"] = patch.retry
        if "timeout" in given:
            changes["timeout_s"] = None if patch.timeout is None else patch.timeout.total_seconds()
        for name in ("overlap", "max_queued", "catchup"):
            if name in given and getattr(patch, name) is not None:
                changes[name] = getattr(patch, name)
        if "catchup_window" in given and patch.catchup_window is not None:
            changes["catchup_window_s"] = patch.catchup_window.total_seconds()
        if "max_runs" in given:
            if patch.max_runs is not None and patch.max_runs <= task.run_count:
                raise InvalidInput(
                    f"max_runs must be above the {task.run_count} runs already made, or null "
                    "for no limit",
                    field="max_runs",
                    example=str(task.run_count + 10),
                )
            changes["max_runs"] = patch.max_runs
        if "expires_at" in given:
            if patch.expires_at is not None and patch.expires_at <= now:
                raise InvalidInput(
                    "expires_at is in the past",
                    field="expires_at",
                    example=(now + timedelta(days=7)).isoformat().replace("+00:00", "Z"),
                )
            changes["expires_at"] = patch.expires_at
        if "callback_url" in given:
            _check_callback_url(patch.callback_url)
            changes["callback_url"] = patch.callback_url
        if "metadata" in given and patch.metadata is not None:
            changes["metadata"] = patch.metadata
        if "depends_on" in given:
            if patch.depends_on is not None:
                await self._check_chain(owner, task.id, patch.depends_on)
            changes["depends_on"] = patch.depends_on
        if "trigger" in given:
            changes["trigger"] = None if patch.trigger is None else new_trigger(patch.trigger)
        if "condition" in given:
            condition = patch.condition
            changes["condition"] = None if condition is None else condition.model_dump(mode="json")
        updated = await self._store.update_task(owner, task_id, changes, now)
        self.engine.wake()
        return updated

    async def pause(self, owner: str, task_id: str, note: str | None = None) -> Task:
        task = await self.get(owner, task_id)
        if task.status in _ENDED:
            raise Conflict(f"task {task.id} has ended ({task.status}); there is nothing to pause")
        if note is not None and len(note) > 2000:
            raise InvalidInput("note is longer than 2000 characters", field="note")
        return await self._store.update_task(
            owner,
            task_id,
            {"status": TaskStatus.PAUSED, "pause_note": note, "next_fire_at": None},
            self._now(),
        )

    async def resume(self, owner: str, task_id: str) -> Task:
        """Resume from now: fires missed while paused are not replayed."""
        task = await self.get(owner, task_id)
        if task.status in _ENDED:
            raise Conflict(f"task {task.id} has ended ({task.status}); create a new task instead")
        now = self._now()
        from wakecall.engine.scheduler import schedule_of

        first = schedule_of(task).next_after(now)
        if first is None:
            raise Conflict(
                f"task {task.id} has no fire after now (its only fire passed while it was "
                'paused); patch_schedule it to a new time, e.g. {"schedule": "in 5m"}'
            )
        if task.expires_at is not None and first > task.expires_at:
            raise Conflict(
                f"task {task.id} would next fire after its expires_at "
                f"({task.expires_at.isoformat()}); patch expires_at first"
            )
        updated = await self._store.update_task(
            owner,
            task_id,
            {"status": TaskStatus.ACTIVE, "pause_note": None, "next_fire_at": first},
            now,
        )
        self.engine.wake()
        return updated

    async def delete(self, owner: str, task_id: str) -> None:
        running = await self._store.delete_task(owner, task_id)
        self.engine.cancel_local(running, "cancelled: the task was deleted")

    async def _check_chain(self, owner: str, task_id: str, upstream_id: str) -> None:
        """`task_id` may depend on `upstream_id`: a task of the same owner, and no cycle."""
        seen = [task_id]
        current: str | None = upstream_id
        while current is not None:
            if current in seen:
                path = " -> ".join([*seen, current])
                raise InvalidInput(
                    f"depends_on {upstream_id!r} would make a cycle ({path}); a chain must end",
                    field="depends_on",
                )
            seen.append(current)
            try:
                upstream = await self._store.get_task(owner, current)
            except TaskNotFound:
                raise InvalidInput(
                    f"depends_on names {current!r}, which is not one of your tasks; give the id "
                    "of a task list_tasks shows",
                    field="depends_on",
                ) from None
            if len(seen) > MAX_CHAIN:
                raise InvalidInput(
                    f"the chain above {task_id!r} is longer than {MAX_CHAIN} tasks",
                    field="depends_on",
                )
            current = upstream.depends_on

    async def trigger(self, task: Task, event_id: str | None, body: Any) -> tuple[str, bool]:
        """Queue a run of `task` for an inbound event (the caller checked the credentials):
        the run's id and True, or the run an event with this id made before and False.

        The task's rate limit guards against reactive loops: an event over `per_minute` in the
        last minute trips the circuit breaker, which pauses the task (with a `task.paused`
        event saying why) and refuses the event with `LimitReached`."""
        config = task.trigger
        if config is None:
            raise Conflict(f"task {task.id} takes no inbound events")
        if task.status != TaskStatus.ACTIVE:
            raise Conflict(
                f"task {task.id} is {task.status}"
                + (f" ({task.pause_note})" if task.pause_note else "")
                + "; it takes inbound events only while active"
            )
        now = self._now()
        limit = int(config.get("per_minute", 60))
        if event_id is None:
            event_id = new_id("evt")
        else:
            # A sender's retry of an event already taken is answered as a duplicate, and does
            # not count toward the limit (senders retry on timeouts).
            seen = await self._store.event_run_id(task.id, event_id)
            if seen is not None:
                return seen, False
        recent = await self._store.count_runs_since(
            task.id, Trigger.EVENT, now - timedelta(minutes=1)
        )
        if recent >= limit:
            note = (
                f"circuit breaker: {recent} inbound events in the last minute, its limit is "
                f"{limit}; resume it once the sender is fixed"
            )
            await self.pause(task.owner, task.id, note)
            await self._store.append_events(
                now,
                [
                    NewEvent(
                        EventType.TASK_PAUSED,
                        task.id,
                        None,
                        {**task_event_payload(task, "circuit_breaker"), "note": note},
                    )
                ],
            )
            raise LimitReached(f"task {task.id} was paused: {note}")
        run = NewRun(
            id=new_id("run"),
            scheduled_for=None,
            due_at=now,
            status=RunStatus.QUEUED,
            trigger=Trigger.EVENT,
            counts=False,
            input=body,
        )
        run_id, created = await self._store.create_event_run(task.id, event_id, run, now)
        if created:
            self.engine.wake()
        return run_id, created

    async def run_now(self, owner: str, task_id: str) -> Run:
        """Queue a manual run at once (also for a paused task). Manual runs do not count
        toward max_runs."""
        task = await self.get(owner, task_id)
        if task.status in _ENDED:
            raise Conflict(f"task {task.id} has ended ({task.status}); it cannot run again")
        now = self._now()
        run = await self._store.create_run(
            owner,
            task_id,
            NewRun(
                id=new_id("run"),
                scheduled_for=None,
                due_at=now,
                status=RunStatus.QUEUED,
                trigger=Trigger.MANUAL,
                counts=False,
            ),
            now,
        )
        self.engine.wake()
        return run

    # --- wakeups --------------------------------------------------------------------------
    async def schedule_wakeup(
        self,
        owner: str,
        *,
        delay: str | float | timedelta | None = None,
        at: datetime | None = None,
        reason: str = "",
        context: Any = None,
        dedupe_key: str | None = None,
    ) -> WakeupReceipt:
        """A durable one-shot that wakes `owner`. The delay is clamped to the configured
        bounds; the receipt says when it will fire and whether it was clamped."""
        if (delay is None) == (at is None):
            raise InvalidInput(
                "give exactly one of 'in' (a delay) or 'at' (an instant)",
                example='{"in": "15m", "reason": "check the deploy"}',
            )
        now = self._now()
        if at is not None:
            if at.tzinfo is None:
                raise InvalidInput(
                    "'at' needs a UTC offset", field="at", example='"2026-12-01T09:00:00Z"'
                )
            requested = at
        else:
            assert delay is not None
            wait = parse_duration(delay, field="in")
            requested = now + wait
        cfg = self.engine.config
        low, high = now + cfg.wakeup_min, now + cfg.wakeup_max
        scheduled = min(max(requested, low), high)
        clamped = scheduled != requested
        spec = TaskSpec(
            name=f"wakeup: {reason[:80]}" if reason else "wakeup",
            schedule={"type": "once", "at": scheduled.isoformat()},
            action=WakeupAction(reason=reason, context=context),
            idempotency_key=None if dedupe_key is None else f"wakeup:{dedupe_key}",
        )
        task, created = await self.create(owner, spec, kind="wakeup")
        fire = task.next_fire_at or scheduled
        return WakeupReceipt(task, fire, clamped and created, requested, created)

    async def cancel_wakeup(self, owner: str, task_id: str) -> Task:
        task = await self.get(owner, task_id)
        if task.kind != "wakeup":
            raise InvalidInput(
                f"{task_id} is a task, not a wakeup; use delete to remove a task",
                field="wakeup_id",
            )
        await self.delete(owner, task_id)
        return task
