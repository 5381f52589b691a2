"""What a batch of fires or finished runs writes, planned once for every backend.

Pure functions of what the store read in its transaction: no I/O, no clock (instants are
parameters), no backend. Each backend reads what a plan needs, calls the planner, and writes
the plan in its own dialect (PostgreSQL often in one statement), so both stores write the
same runs, attempts, task changes, events and callback bodies, in the same order.

* `EventDraft`: an event as it will be appended, its payload encoded once and the callback
  body of its delivery fixed (`{"event", "timestamp", **payload}`), before its cursor is known;
  `EndMark` and `place_ends`: where an ended task's `task.expired` goes among them.
* `plan_fire_runs`, then `plan_fire_writes`: the runs of a batch of `FirePlan`s (some may
  already exist: the store inserts what it can and says which), then everything else: the
  tasks moved on, the runs to flag, the runs settled at birth with their attempts, the events.
* `plan_finishes`: the outcomes of attempts turned into the runs as they end (or are queued
  again), their events, and the failure streaks they change (`StreakChange`), with the pause
  and the `task.paused` event of a streak that reached its task's `pause_after_failures`.
* `plan_backfill`: the runs of a backfill (see `store.backfills`).
* `dependency_runs`: the runs queued for the tasks that depend on a task whose run succeeded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wakecall.ids import new_id
from wakecall.models import (
    CALLBACK_EVENTS,
    BackfillOverlap,
    Event,
    EventType,
    Run,
    RunStatus,
    Task,
    TaskStatus,
    Trigger,
    event_type_for,
    failures_pause_note,
    failures_paused_payload,
    pauses_for_failures,
    run_event_payload,
    streak_after,
    task_event_payload,
)
from wakecall.store.base import (
    FirePlan,
    NewEvent,
    NewRun,
    RunOutcome,
    dependency_run,
    new_run_record,
)
from wakecall.store.rows import ATTEMPT_STATUS_TO_RUN
from wakecall.tracecontext import TraceContext

__all__ = [
    "Drafts",
    "EndMark",
    "EventDraft",
    "FinishPlan",
    "FireWrites",
    "StreakChange",
    "TaskMove",
    "dependency_runs",
    "moved_task",
    "place_ends",
    "plan_backfill",
    "plan_finishes",
    "plan_fire_runs",
    "plan_fire_writes",
    "run_after",
]


class EventDraft:
    """An event to append, with the callback delivery it creates when its task has a
    `callback_url` and its type is a callback event (sent with `trace`, its run's or its
    task's trace context); its cursor is known once written."""

    __slots__ = (
        "_values",
        "body",
        "created_at",
        "delivery_id",
        "event",
        "owner",
        "payload",
        "trace",
        "url",
    )

    def __init__(
        self,
        owner: str,
        event: NewEvent,
        created_at: datetime,
        callback_url: str | None,
        encode: Callable[[Any], str],
        *,
        read_back: bool = False,
        trace: TraceContext | None = None,
    ) -> None:
        self.owner = owner
        self.event = event
        self.created_at = created_at.astimezone(UTC)
        values = dict(event.payload)
        self.payload = encode(values)
        #: The payload the written event carries: as given, or read back from its text.
        self._values = json.loads(self.payload) if read_back else values
        self.url: str | None = None
        self.delivery_id: str | None = None
        self.body: str | None = None
        self.trace: TraceContext | None = None
        if callback_url and event.type in CALLBACK_EVENTS:
            # The exact bytes every attempt sends: {"event", "timestamp", **payload}.
            stamp = self.created_at.isoformat().replace("+00:00", "Z")
            head = f'{{"event": {json.dumps(str(event.type))}, "timestamp": "{stamp}"'
            rest = self.payload[1:]
            self.body = head + (", " + rest if rest != "}" else "}")
            self.url = callback_url
            self.delivery_id = new_id("msg")
            self.trace = trace

    def written(self, cursor: int) -> Event:
        """The event as appended under `cursor`."""
        return Event(
            cursor=cursor,
            owner=self.owner,
            type=self.event.type,
            task_id=self.event.task_id,
            run_id=self.event.run_id,
            created_at=self.created_at,
            payload=dict(self._values),
        )


@dataclass(frozen=True, slots=True)
class Drafts:
    """How a backend encodes payloads: `encode` makes the text it stores (and the callback
    body's); with `read_back`, the written event carries the payload as read back from that
    text (for an encoder that alters what its column refuses), otherwise as given."""

    encode: Callable[[Any], str]
    read_back: bool = False

    def draft(
        self,
        owner: str,
        event: NewEvent,
        at: datetime,
        callback_url: str | None,
        trace: TraceContext | None = None,
    ) -> EventDraft:
        return EventDraft(
            owner, event, at, callback_url, self.encode, read_back=self.read_back, trace=trace
        )


class EndMark:
    """Where a task's `task.expired` goes in a transaction's events, if it is announced: after
    the task's last mark. `task` is the task as it ended."""

    __slots__ = ("at", "task")

    def __init__(self, task: Task, at: datetime) -> None:
        self.task = task
        self.at = at


def place_ends(
    pending: Sequence[EventDraft | EndMark], announced: set[str], drafts: Drafts
) -> list[EventDraft]:
    """The events in order, each announced task's `task.expired` at its last mark (the store
    decides which ends are announced: an expired task with no unfinished run, once)."""
    last = {p.task.id: i for i, p in enumerate(pending) if isinstance(p, EndMark)}
    out: list[EventDraft] = []
    for i, p in enumerate(pending):
        if not isinstance(p, EndMark):
            out.append(p)
        elif p.task.id in announced and last[p.task.id] == i:
            payload = task_event_payload(p.task, p.task.end_reason)
            event = NewEvent(EventType.TASK_EXPIRED, p.task.id, None, payload)
            out.append(drafts.draft(p.task.owner, event, p.at, p.task.callback_url, p.task.trace))
    return out


def end_marks(pending: Iterable[EventDraft | EndMark]) -> list[str]:
    """The ids of the tasks marked as ended, each once, in order."""
    return list(dict.fromkeys(p.task.id for p in pending if isinstance(p, EndMark)))


# --- fires ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TaskMove:
    """How a fire moves its task on (its claim is released too)."""

    task_id: str
    next_fire_at: datetime | None
    last_fire_at: datetime | None
    counted: int  # new runs counting toward max_runs
    status: TaskStatus
    end_reason: str | None


def moved_task(task: Task, move: TaskMove, now: datetime) -> Task:
    """`task` as `move` leaves it, written at `now`."""
    return task.replace(
        status=move.status,
        updated_at=now,
        next_fire_at=move.next_fire_at,
        last_fire_at=move.last_fire_at,
        run_count=task.run_count + move.counted,
        claimed_by=None,
        claim_expires_at=None,
        end_reason=move.end_reason,
    )


@dataclass
class FireWrites:
    """What recording a batch of fires writes besides its runs."""

    #: The runs inserted (a fire already recorded inserts none), in plan order.
    created: list[Run] = field(default_factory=list)
    #: The tasks moved on, one per accepted plan, in plan order.
    moves: list[TaskMove] = field(default_factory=list)
    #: Runs to flag for cancellation (`cancel_previous`).
    cancel_run_ids: list[str] = field(default_factory=list)
    #: The runs written finished at birth (each gets a success attempt), with their tasks as
    #: before the fire (the upstream of their dependents).
    settled: list[Run] = field(default_factory=list)
    settled_tasks: dict[str, Task] = field(default_factory=dict)
    #: The events, in plan order: a plan's missed run, its settled runs, its own events, then
    #: where its end is announced.
    events: list[EventDraft | EndMark] = field(default_factory=list)


def plan_fire_runs(
    accepted: Sequence[tuple[FirePlan, Task]], now: datetime
) -> list[tuple[Run, bool]]:
    """The runs of the accepted plans (each with its task as read), as records written at
    `now` (a plan's instant runs due by `now` finished at birth), each with whether it counts
    toward `max_runs`, in plan order."""
    return [
        (
            new_run_record(
                task.id, task.owner, task.retry.attempts, new, now, plan.instant_for(new, now)
            ),
            new.counts,
        )
        for plan, task in accepted
        for new in plan.runs
    ]


def plan_fire_writes(
    accepted: Sequence[tuple[FirePlan, Task]],
    candidates: Sequence[tuple[Run, bool]],
    inserted: set[str],
    now: datetime,
    drafts: Drafts,
) -> FireWrites:
    """Everything recording the fires writes once the store inserted the runs of `inserted`
    among `candidates` (`plan_fire_runs` of the same plans)."""
    out = FireWrites()
    position = 0
    for plan, task in accepted:
        counted = 0
        born_settled: list[Run] = []
        for _ in plan.runs:
            run, counts = candidates[position]
            position += 1
            if run.id not in inserted:
                continue
            if counts:
                counted += 1
            out.created.append(run)
            if run.status == RunStatus.SUCCESS:  # only an instant run is born so
                born_settled.append(run)
            elif run.status == RunStatus.MISSED:
                task_now = task.replace(run_count=task.run_count + counted)
                event = NewEvent(
                    EventType.RUN_MISSED, task.id, run.id, run_event_payload(task_now, run)
                )
                out.events.append(
                    drafts.draft(task.owner, event, now, task.callback_url, run.trace)
                )
        if born_settled:
            # Their events show the task as the fire left it: only its count moved.
            out.settled += born_settled
            out.settled_tasks[task.id] = task
            run_count = task.run_count + counted
            for run in born_settled:
                payload = run_event_payload(task, run, run_count=run_count)
                event = NewEvent(event_type_for(task, run), task.id, run.id, payload)
                out.events.append(
                    drafts.draft(task.owner, event, now, task.callback_url, run.trace)
                )
        out.events += [
            drafts.draft(task.owner, e, now, task.callback_url, task.trace) for e in plan.events
        ]
        move = TaskMove(
            task.id,
            plan.next_fire_at,
            plan.last_fire_at,
            counted,
            plan.end.status if plan.end else task.status,
            plan.end.reason if plan.end else task.end_reason,
        )
        out.moves.append(move)
        out.cancel_run_ids += plan.cancel_run_ids
        if plan.end is not None and plan.end.status == TaskStatus.EXPIRED:
            out.events.append(EndMark(moved_task(task, move, now), now))
    return out


# --- finishes ------------------------------------------------------------------------------
def run_after(run: Run, outcome: RunOutcome) -> Run:
    """The run as its attempt's outcome leaves it: queued again for a retry, or final."""
    if outcome.retry_at is not None:
        return run.replace(
            status=RunStatus.QUEUED,
            due_at=outcome.retry_at,
            claimed_by=None,
            lease_expires_at=None,
            error_message=outcome.error_message,
            output=outcome.output,
        )
    duration = outcome.duration_ms
    if duration is None and run.started_at is not None:
        duration = int((outcome.finished_at - run.started_at).total_seconds() * 1000)
    return run.replace(
        status=ATTEMPT_STATUS_TO_RUN[outcome.attempt_status],
        finished_at=outcome.finished_at,
        duration_ms=duration,
        output=outcome.output,
        error_message=outcome.error_message,
        claimed_by=None,
        lease_expires_at=None,
    )


@dataclass(frozen=True, slots=True)
class StreakChange:
    """A task's failure streak as a batch of finished runs leaves it (`models.failures`), and
    the pause it caused: the note and the instant (the end of the run that reached the limit),
    or None when it caused none."""

    failure_streak: tuple[str, ...]
    pause_note: str | None = None
    paused_at: datetime | None = None

    def replace_streak(self, streak: tuple[str, ...]) -> StreakChange:
        """This change with a later streak (a later run of the batch), its pause kept."""
        return StreakChange(streak, self.pause_note, self.paused_at)


@dataclass
class FinishPlan:
    """What finishing a batch of attempts writes."""

    #: Each outcome with its run as it leaves it, in outcome order (an outcome of a run not
    #: held, or given twice, is left out: only a run's first outcome counts).
    handled: list[tuple[Run, RunOutcome]] = field(default_factory=list)
    #: The events of the runs that ended (a retried run has none, nor the run of a task gone
    #: meanwhile), in outcome order; an expired task's end is marked after each of its runs,
    #: and the `task.paused` of a pause after failures follows the run that caused it.
    events: list[EventDraft | EndMark] = field(default_factory=list)
    #: The tasks whose failure streak changed, by id, in the order of their first change.
    streaks: dict[str, StreakChange] = field(default_factory=dict)

    @property
    def written(self) -> list[Run]:
        return [run for run, _ in self.handled]

    @property
    def retried(self) -> bool:
        return any(run.status == RunStatus.QUEUED for run, _ in self.handled)


def plan_finishes(
    held: Mapping[str, Run],
    tasks: Mapping[str, Task],
    outcomes: Sequence[RunOutcome],
    drafts: Drafts,
) -> FinishPlan:
    """The writes of `outcomes` for the runs the node still holds (`held`, unfinished and
    claimed by it, by id), with their tasks (a task deleted meanwhile is absent)."""
    out = FinishPlan()
    left = dict(held)
    for outcome in outcomes:
        run = left.pop(outcome.run_id, None)
        if run is not None:
            out.handled.append((run_after(run, outcome), outcome))
    current = dict(tasks)  # as the runs ended so far in this batch leave them
    for run, outcome in out.handled:
        task = current.get(run.task_id)
        if run.status == RunStatus.QUEUED or task is None:
            continue  # retried, or deleted while running: no one to tell
        event = NewEvent(event_type_for(task, run), task.id, run.id, run_event_payload(task, run))
        out.events.append(
            drafts.draft(task.owner, event, outcome.finished_at, task.callback_url, run.trace)
        )
        if task.status == TaskStatus.EXPIRED:
            out.events.append(EndMark(task, outcome.finished_at))
        current[task.id] = _count_failures(out, task, run, drafts)
    return out


def _count_failures(out: FinishPlan, task: Task, run: Run, drafts: Drafts) -> Task:
    """`task` as the end of `run` leaves its failure streak, noted in `out`, with the pause
    and the `task.paused` event when the streak reached the task's limit."""
    streak = streak_after(task, run)
    if streak is None:
        return task
    earlier = out.streaks.get(task.id)
    change = StreakChange(streak) if earlier is None else earlier.replace_streak(streak)
    if pauses_for_failures(task, streak):
        assert run.finished_at is not None
        note = failures_pause_note(streak, run)
        payload = failures_paused_payload(task, streak, note)
        event = NewEvent(EventType.TASK_PAUSED, task.id, None, payload)
        out.events.append(drafts.draft(task.owner, event, run.finished_at, task.callback_url))
        change = StreakChange(streak, note, run.finished_at)
        task = task.replace(status=TaskStatus.PAUSED, pause_note=note, next_fire_at=None)
    out.streaks[task.id] = change
    return task.replace(failure_streak=streak)


# --- chains --------------------------------------------------------------------------------
def dependency_runs(
    upstream: Mapping[str, Task],
    dependents: Mapping[str, Sequence[Task]],
    written: Sequence[Run],
) -> list[tuple[Task, NewRun, datetime]]:
    """For each run of `written` that succeeded, a run of each active task of the same owner
    that depends on its task (`dependents` by upstream task id), with the upstream run as its
    input, created when the upstream run finished: (the dependent task, its new run, then).
    The new run carries the upstream run's trace context."""
    out: list[tuple[Task, NewRun, datetime]] = []
    for run in written:
        if run.status != RunStatus.SUCCESS or run.task_id not in upstream:
            continue
        source = upstream[run.task_id]
        assert run.finished_at is not None
        for task in dependents.get(run.task_id, ()):
            if task.owner == source.owner and task.status == TaskStatus.ACTIVE:
                out.append((task, dependency_run(source, run, run.trace), run.finished_at))
    return out


def succeeded_task_ids(upstream: Mapping[str, Task], written: Iterable[Run]) -> list[str]:
    """The tasks of `upstream` with a run of `written` that succeeded: whose dependents to
    look up."""
    return list(
        dict.fromkeys(
            r.task_id for r in written if r.status == RunStatus.SUCCESS and r.task_id in upstream
        )
    )


def plan_backfill(
    slots: Sequence[datetime],
    existing: Iterable[datetime],
    *,
    busy: bool,
    overlap: BackfillOverlap,
    now: datetime,
    trace: TraceContext | None = None,
    make_id: Callable[[str], str] = new_id,
) -> list[NewRun]:
    """The new runs of a backfill of `slots` (oldest first) for those not in `existing` (slots
    backfilled before), in slot order; their ids sort in that order, which is the order claims
    take runs due at one instant. `busy`: a run of the task is unfinished (for `skip`). Each
    carries `trace` (the trace context of the call)."""
    done = set(existing)
    runs: list[NewRun] = []
    for slot in slots:
        if slot in done:
            continue
        skipped = overlap == BackfillOverlap.SKIP and (busy or bool(runs))
        runs.append(
            NewRun(
                id=make_id("run"),
                scheduled_for=slot,
                due_at=now,
                status=RunStatus.SKIPPED if skipped else RunStatus.QUEUED,
                trigger=Trigger.BACKFILL,
                error_message=(
                    "skipped: another run of the task was unfinished (backfill overlap 'skip')"
                    if skipped
                    else None
                ),
                counts=False,
                trace=trace,
            )
        )
    return runs
