"""The operations agents and operators perform on tasks, with every check made before anything
is written: a refused request changes nothing.

`TaskService` is built from a store, a clock, a config and the operator's policy; the tools,
the command line and task files all go through it, so every task, however it comes, passes the
same checks (`engine.checks`) and is written the same way (`Store.write_tasks`, one transaction
per operation, the owner's task limit judged inside it). A scheduler running in the same
process is told of changes through `scheduler` (it would notice them later anyway: other
processes change the store too).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from wakecall.actions.policy import ActionPolicy
from wakecall.clock import Clock
from wakecall.config import EngineConfig
from wakecall.delivery.signing import new_secret
from wakecall.engine import backfill, checks
from wakecall.engine.schedule_cache import schedule_of
from wakecall.errors import Conflict, InvalidInput, LimitReached, TaskNotFound
from wakecall.ids import new_id
from wakecall.models import (
    Attempt,
    BackfillOverlap,
    Delivery,
    DeliveryStatus,
    EventType,
    Run,
    RunStatus,
    Task,
    TaskPatch,
    TaskSpec,
    TaskStatus,
    Trigger,
    WakeupAction,
    task_event_payload,
)
from wakecall.schedules import parse_duration
from wakecall.store.backfills import Backfill, Backfilled
from wakecall.store.base import (
    NewEvent,
    NewRun,
    NewTask,
    OwnerLimits,
    Store,
    TaskDeletion,
    TaskUpdate,
    TaskWrite,
    TaskWritten,
)
from wakecall.store.flow import next_start, waiting_reason
from wakecall.tracecontext import TraceContext

__all__ = ["BackfillReceipt", "Changed", "Created", "SchedulerLink", "TaskService", "WakeupReceipt"]

#: The longest chain of `depends_on` above a task.
MAX_CHAIN = 50


class SchedulerLink(Protocol):
    """What the service tells a scheduler running in the same process."""

    def wake(self, *, earliest: datetime | None = None) -> None:
        """Tasks changed: recompute the next deadline now. `earliest`: nothing the change
        made can be due before this instant (new tasks and their first fires), so a
        scheduler asleep until no later than it need not wake."""

    def cancel_local(self, run_ids: Sequence[str], message: str) -> None:
        """These runs' task was deleted: cancel those executing here."""


class _NoScheduler:
    """No scheduler in this process (the command line): a running server notices changes
    on its own, as it notices those of other nodes."""

    def wake(self, *, earliest: datetime | None = None) -> None:
        return None

    def cancel_local(self, run_ids: Sequence[str], message: str) -> None:
        return None


@dataclass(frozen=True)
class Created:
    task: Task
    #: False when the owner's task with the same idempotency key was returned instead.
    created: bool
    #: The signing secret of the task's callbacks, shown once (a new task with a callback_url).
    callback_secret: str | None = None

    @property
    def trigger_secret(self) -> str | None:
        """The inbound-event secret, shown once (a new task with a trigger)."""
        return (self.task.trigger or {}).get("secret") if self.created else None


@dataclass(frozen=True)
class Changed:
    task: Task
    #: A new callback signing secret (a rotation, or a first callback_url), shown once.
    callback_secret: str | None = None
    #: A new inbound-event secret (the trigger was given), shown once.
    trigger_secret: str | None = None


@dataclass(frozen=True)
class BackfillReceipt:
    task: Task
    start: datetime
    end: datetime
    overlap: BackfillOverlap
    #: Every fire of the range, oldest first.
    slots: list[datetime]
    #: The runs written (or, in a dry run, that would be) and the slots backfilled before.
    done: Backfilled
    dry_run: bool


@dataclass(frozen=True)
class WakeupReceipt:
    task: Task
    scheduled_for: datetime
    clamped: bool
    requested: datetime
    created: bool


class TaskService:
    def __init__(
        self,
        store: Store,
        *,
        clock: Clock,
        config: EngineConfig,
        policy: ActionPolicy | None = None,
        scheduler: SchedulerLink | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.config = config
        self.policy = policy or ActionPolicy()
        self.scheduler: SchedulerLink = scheduler or _NoScheduler()

    def now(self) -> datetime:
        return self.clock.now()

    async def write(
        self,
        owner: str,
        writes: Sequence[TaskWrite],
        *,
        events: Sequence[NewEvent] = (),
        dry_run: bool = False,
        rates: bool = True,
    ) -> list[TaskWritten]:
        """Make `writes` in one transaction, within the owner's limits (see
        `Store.write_tasks`); the scheduler is woken after a real write. Without `rates`, the
        per-minute creation limits do not apply (an operator's task file)."""
        cfg = self.config
        limits = OwnerLimits(
            max_tasks=cfg.max_tasks_per_owner,
            tasks_per_minute=cfg.tasks_per_minute if rates else None,
            wakeups_per_minute=cfg.wakeups_per_minute if rates else None,
        )
        try:
            written = await self.store.write_tasks(
                owner, writes, self.now(), limits=limits, events=events, dry_run=dry_run
            )
        except LimitReached as exc:
            raise _explained(exc) from None
        if not dry_run:
            running = [run_id for w in written for run_id in w.running]
            if running:
                self.scheduler.cancel_local(running, "cancelled: the task was deleted")
            self.scheduler.wake(earliest=_earliest_new_fire(writes))
        return written

    # --- create ---------------------------------------------------------------------------
    async def create(
        self,
        owner: str,
        spec: TaskSpec,
        *,
        kind: str = "task",
        task_id: str | None = None,
        trace: TraceContext | None = None,
    ) -> Created:
        """Create a task (or answer with the owner's task of the same idempotency key).

        `task_id` names the task instead of a generated `tsk_` id (operators and task files
        use it to address a task by a stable name); `Conflict` when a task (of any owner) has
        that id already. The runs of the task's first fire carry `trace`, the trace context
        of the call that created it."""
        task = self.new_task(owner, spec, kind=kind, task_id=task_id)
        if trace is not None:
            task = task.replace(traceparent=trace.traceparent, tracestate=trace.tracestate)
        if spec.depends_on is not None:
            await self.check_chain(owner, task.id, spec.depends_on)
        secret = new_secret() if task.callback_url else None
        (written,) = await self.write(owner, [NewTask(task, secret)])
        assert written.task is not None
        return Created(written.task, written.created, secret if written.created else None)

    def new_task(
        self, owner: str, spec: TaskSpec, *, kind: str = "task", task_id: str | None = None
    ) -> Task:
        """The task `spec` makes now, checked (nothing written)."""
        return checks.new_task(
            owner,
            spec,
            now=self.now(),
            config=self.config,
            policy=self.policy,
            kind=kind,
            task_id=task_id,
        )

    # --- read -----------------------------------------------------------------------------
    async def get(self, owner: str | None, task_id: str) -> Task:
        return await self.store.get_task(owner, task_id)

    async def flow_wait(self, owner: str | None, task_id: str) -> str | None:
        """Why the task's due queued runs wait for its flow-control keys, in words (e.g.
        "waiting for concurrency key crm (3/3 running)"); None when none waits on them."""
        task = await self.store.get_task(owner, task_id)
        if not task.flow_controlled:
            return None
        now = self.clock.now()
        queued = await self.store.list_runs(owner, task_id=task_id, status=RunStatus.QUEUED)
        if not any(r.due_at <= now for r in queued):
            return None
        rate = task.rate_limit
        period = timedelta(seconds=float(rate["period_s"])) if rate else timedelta(0)
        running, starts = await self.store.flow_usage(
            task.owner,
            None if task.concurrency is None else str(task.concurrency["key"]),
            None if rate is None else str(rate["key"]),
            now - period,
        )
        next_at = None if rate is None else next_start(starts, int(rate["limit"]), period, now)
        return waiting_reason(task.concurrency, rate, running, next_at, now)

    async def list_tasks(
        self,
        owner: str,
        *,
        status: TaskStatus | None = None,
        kind: str | None = None,
        name_contains: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[Task]:
        """A page of the owner's tasks, in id order (see `Store.list_tasks`)."""
        return await self.store.list_tasks(
            owner,
            status=status,
            kind=kind,
            name_contains=name_contains,
            metadata=metadata,
            after=after,
            limit=limit,
        )

    async def list_all(
        self,
        owner: str,
        *,
        kind: str | None = None,
        status: TaskStatus | None = None,
        name_contains: str | None = None,
    ) -> list[Task]:
        """Every task of the owner (filtered as `Store.list_tasks` filters), in id order."""
        found: list[Task] = []
        after: str | None = None
        while True:
            page = await self.store.list_tasks(
                owner, kind=kind, status=status, name_contains=name_contains, after=after, limit=500
            )
            found.extend(page)
            if len(page) < 500:
                return found
            after = page[-1].id

    # --- change ---------------------------------------------------------------------------
    async def patch(
        self, owner: str, task_id: str, patch: TaskPatch, *, rotate_callback_secret: bool = False
    ) -> Changed:
        """Change any mutable field; a new schedule, zone or jitter recomputes the next fire.
        A new callback signing secret is issued for a first callback_url, or on a rotation
        (the old ones keep signing for the configured grace)."""
        task = await self.get(owner, task_id)
        if not patch.model_fields_set and not rotate_callback_secret:
            raise InvalidInput(
                "nothing to change: give at least one field",
                example='{"schedule": "*/10 * * * *"}',
            )
        changes = checks.patch_changes(
            task, patch, now=self.now(), config=self.config, policy=self.policy
        )
        if patch.depends_on is not None:
            await self.check_chain(owner, task.id, patch.depends_on)
        url = changes.get("callback_url", task.callback_url)
        secret, retire = None, None
        if url and (rotate_callback_secret or not task.callback_url):
            secret = new_secret()
            grace = self.config.secret_grace if rotate_callback_secret else timedelta(0)
            retire = self.now() + grace
        update = TaskUpdate(task.id, changes, task.status, secret, retire)
        (written,) = await self.write(owner, [update])
        assert written.task is not None
        trigger = (written.task.trigger or {}).get("secret") if "trigger" in changes else None
        return Changed(written.task, secret, trigger)

    async def pause(self, owner: str, task_id: str, note: str | None = None) -> Task:
        task = await self.get(owner, task_id)
        return await self._update(owner, task, checks.pause_changes(task, note))

    async def resume(self, owner: str, task_id: str) -> Task:
        """Resume from now: fires missed while paused are not replayed."""
        task = await self.get(owner, task_id)
        return await self._update(owner, task, checks.resume_changes(task, self.now()))

    async def _update(self, owner: str, task: Task, changes: dict[str, Any]) -> Task:
        (written,) = await self.write(owner, [TaskUpdate(task.id, changes, task.status)])
        assert written.task is not None
        return written.task

    async def delete(self, owner: str, task_id: str) -> None:
        await self.write(owner, [TaskDeletion(task_id)])

    async def check_chain(self, owner: str, task_id: str, upstream_id: str) -> None:
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
                upstream = await self.store.get_task(owner, current)
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

    # --- runs -----------------------------------------------------------------------------
    async def trigger(self, task: Task, event_id: str | None, body: Any) -> tuple[str, bool]:
        """Queue a run of `task` for an inbound event (the caller checked the credentials):
        the run's id and True, or the run an event with this id made before and False.

        The task's rate limit guards against reactive loops: an event over `per_minute` in the
        last minute trips the circuit breaker, which pauses the task (with a `task.paused`
        event saying why, in the same transaction) and refuses the event with `LimitReached`."""
        config = task.trigger
        if config is None:
            raise Conflict(f"task {task.id} takes no inbound events")
        if task.status != TaskStatus.ACTIVE:
            raise Conflict(
                f"task {task.id} is {task.status}"
                + (f" ({task.pause_note})" if task.pause_note else "")
                + "; it takes inbound events only while active"
            )
        now = self.now()
        if event_id is None:
            event_id = new_id("evt")
        else:
            # A sender's retry of an event already taken is answered as a duplicate, and does
            # not count toward the limit (senders retry on timeouts).
            seen = await self.store.event_run_id(task.id, event_id)
            if seen is not None:
                return seen, False
        await self._check_event_rate(task, int(config.get("per_minute", 60)), now)
        run = NewRun(
            id=new_id("run"),
            scheduled_for=None,
            due_at=now,
            status=RunStatus.QUEUED,
            trigger=Trigger.EVENT,
            counts=False,
            input=body,
        )
        run_id, created = await self.store.create_event_run(task.id, event_id, run, now)
        if created:
            self.scheduler.wake()
        return run_id, created

    async def _check_event_rate(self, task: Task, limit: int, now: datetime) -> None:
        recent = await self.store.count_runs_since(
            task.id, Trigger.EVENT, now - timedelta(minutes=1)
        )
        if recent < limit:
            return
        note = (
            f"circuit breaker: {recent} inbound events in the last minute, its limit is {limit}; "
            "resume it once the sender is fixed"
        )
        paused = NewEvent(
            EventType.TASK_PAUSED,
            task.id,
            None,
            {**task_event_payload(task, "circuit_breaker"), "note": note},
        )
        changes = checks.pause_changes(task, note)
        await self.write(task.owner, [TaskUpdate(task.id, changes, task.status)], events=[paused])
        raise LimitReached(f"task {task.id} was paused: {note}")

    async def run_now(self, owner: str, task_id: str, *, trace: TraceContext | None = None) -> Run:
        """Queue a manual run at once (also for a paused task), carrying `trace` (the trace
        context of the call). Manual runs do not count toward max_runs."""
        task = await self.get(owner, task_id)
        if task.status in checks.ENDED:
            raise Conflict(f"task {task.id} has ended ({task.status}); it cannot run again")
        now = self.now()
        run = await self.store.create_run(
            owner,
            task_id,
            NewRun(
                id=new_id("run"),
                scheduled_for=None,
                due_at=now,
                status=RunStatus.QUEUED,
                trigger=Trigger.MANUAL,
                counts=False,
                trace=trace,
            ),
            now,
        )
        self.scheduler.wake()
        return run

    async def backfill(
        self,
        owner: str,
        task_id: str,
        *,
        start: datetime,
        end: datetime,
        overlap: str = "queue",
        dry_run: bool = False,
        trace: TraceContext | None = None,
    ) -> BackfillReceipt:
        """Queue a run for each fire of the task's schedule in [start, end), a past range, as
        its schedule and zone compute them (trigger `backfill`, not counted toward max_runs),
        at most `config.backfill_max_slots` per call; a slot backfilled before gets nothing
        new (see `store.backfills`, also for `overlap`). A paused task is backfilled too (its
        schedule stays paused); an ended one is refused. With `dry_run` nothing is written. The
        runs carry `trace` (the trace context of the call)."""
        task = await self.get(owner, task_id)
        how = backfill.overlap_of(overlap)
        now = self.now()
        backfill.check_range(task.id, start, end, now)
        if task.status in checks.ENDED:
            raise Conflict(f"task {task.id} has ended ({task.status}); it cannot run again")
        cap = self.config.backfill_max_slots
        slots = backfill.backfill_slots(task.id, schedule_of(task), start, end, cap)
        done = await self.store.backfill_runs(
            owner, Backfill(task.id, slots, how, dry_run, trace), now
        )
        if done.runs and not dry_run:
            self.scheduler.wake()
        return BackfillReceipt(task, start, end, how, slots, done, dry_run)

    async def get_run(self, owner: str, run_id: str) -> Run:
        return await self.store.get_run(owner, run_id)

    async def cancel_run(self, owner: str, run_id: str) -> Run:
        """Ask for one of the owner's runs to be cancelled: it ends `cancelled` once its node
        sees the request (at once on this node, at its next lease renewal on another; a
        queued run when it starts). A run that ends first keeps its outcome. The run as it
        was asked; `RunNotFound` for another owner's."""
        run = await self.store.get_run(owner, run_id)
        if not run.status.is_terminal:
            await self.store.request_cancel(owner, [run_id])
            self.scheduler.cancel_local([run_id], "cancelled on request")
            self.scheduler.wake()
        return run

    async def list_runs(
        self,
        owner: str,
        *,
        task_id: str | None = None,
        status: RunStatus | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> list[Run]:
        """A page of the owner's runs, newest first (see `Store.list_runs`)."""
        return await self.store.list_runs(
            owner, task_id=task_id, status=status, before=before, limit=limit
        )

    async def list_attempts(self, owner: str, run_id: str) -> list[Attempt]:
        return await self.store.list_attempts(owner, run_id)

    # --- callbacks ------------------------------------------------------------------------
    async def list_deliveries(
        self,
        owner: str,
        *,
        status: DeliveryStatus | None = None,
        task_id: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> list[Delivery]:
        """A page of the owner's callback deliveries, newest first."""
        return await self.store.list_deliveries(
            owner, status=status, task_id=task_id, before=before, limit=limit
        )

    async def redeliver(self, owner: str, delivery_id: str) -> Delivery:
        """Send a delivery again now (a dead-lettered one, say), with the same webhook-id."""
        return await self.store.redeliver(owner, delivery_id, self.now())

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
        trace: TraceContext | None = None,
    ) -> WakeupReceipt:
        """A durable one-shot that wakes `owner` (its run carries `trace`, the trace context
        of the call). An instant that is not in the future is refused; a time sooner or later
        than the configured bounds is moved to the nearest bound, and the receipt says when it
        will fire and whether it was moved."""
        now = self.now()
        requested = _wakeup_instant(now, delay, at)
        low, high = now + self.config.wakeup_min, now + self.config.wakeup_max
        scheduled = min(max(requested, low), high)
        clamped = scheduled != requested
        spec = TaskSpec(
            name=f"wakeup: {reason[:80]}" if reason else "wakeup",
            schedule={"type": "once", "at": scheduled.isoformat()},
            action=WakeupAction(reason=reason, context=context),
            idempotency_key=None if dedupe_key is None else f"wakeup:{dedupe_key}",
        )
        made = await self.create(owner, spec, kind="wakeup", trace=trace)
        fire = made.task.next_fire_at or scheduled
        return WakeupReceipt(made.task, fire, clamped and made.created, requested, made.created)

    async def cancel_wakeup(self, owner: str, task_id: str) -> Task:
        task = await self.get(owner, task_id)
        if task.kind != "wakeup":
            raise InvalidInput(
                f"{task_id} is a task, not a wakeup; use delete to remove a task",
                field="wakeup_id",
            )
        await self.delete(owner, task_id)
        return task


def _earliest_new_fire(writes: Sequence[TaskWrite]) -> datetime | None:
    """When `writes` only add tasks: the earliest first fire among them (`datetime.max`
    when none is scheduled: paused, on demand or after another task). None otherwise: a
    change or a deletion can make anything due now."""
    earliest = datetime.max.replace(tzinfo=UTC)
    for write in writes:
        if not isinstance(write, NewTask):
            return None
        fire = write.task.next_fire_at
        if fire is not None and fire < earliest:
            earliest = fire
    return earliest


def _explained(exc: LimitReached) -> LimitReached:
    """The store's refusal in words an agent can act on, naming the operator's setting."""
    allowed = exc.allowed
    if exc.limit == "max_tasks":
        text = (
            f"you already have {allowed} tasks, the most one owner may hold (the server's "
            "max_tasks); delete tasks you no longer need (list_tasks shows them)"
        )
    elif exc.limit == "wakeups_per_minute":
        text = (
            f"you created {allowed} wakeups in the last minute, the most this server allows "
            "(wakeups_per_minute); wait a minute, or cancel wakeups you no longer need"
        )
    elif exc.limit == "tasks_per_minute":
        text = (
            f"you created {allowed} tasks in the last minute, the most this server allows "
            "(tasks_per_minute); wait a minute before creating more"
        )
    else:
        return exc
    return LimitReached(text, limit=exc.limit, allowed=allowed)


def _wakeup_instant(
    now: datetime, delay: str | float | timedelta | None, at: datetime | None
) -> datetime:
    if (delay is None) == (at is None):
        raise InvalidInput(
            "give exactly one of 'in' (a delay) or 'at' (an instant)",
            example='{"in": "15m", "reason": "check the deploy"}',
        )
    if at is None:
        assert delay is not None
        return now + parse_duration(delay, field="in")
    example = f'"{_in_utc(now + timedelta(hours=1))}" or {{"in": "1h"}}'
    if at.tzinfo is None:
        raise InvalidInput("'at' needs a UTC offset", field="at", example=example)
    if at <= now:
        raise InvalidInput(
            f"{_in_utc(at)} is not in the future (now is {_in_utc(now)}); give a later "
            "instant, or a delay as 'in'",
            field="at",
            example=example,
        )
    return at


def _in_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
