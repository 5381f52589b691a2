"""What the engine and the stores say about fires and new runs: a claimed task (`DueTask`), the
engine's plan for it (`FirePlan`, with its `NewRun`s, events and end), what recording it did
(`FireResult`, `PassResult`), and the records of new runs (`new_run_record`,
`dependency_run`). Plain values, for every backend; `store.base` names them beside the
`Store` protocol."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wakecall.ids import new_id
from wakecall.models import (
    Event,
    EventType,
    Run,
    RunStatus,
    Task,
    TaskStatus,
    Trigger,
    run_from_values,
)
from wakecall.tracecontext import TraceContext, trace_columns

__all__ = [
    "DueTask",
    "FirePlan",
    "FireResult",
    "Instant",
    "NewEvent",
    "NewRun",
    "PassResult",
    "Planner",
    "TaskEnd",
    "dependency_run",
    "new_run_record",
]


@dataclass(frozen=True, slots=True)
class DueTask:
    """A claimed task with what the overlap policy needs to know about its unfinished runs."""

    task: Task
    queued_runs: int
    running_run_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NewRun:
    id: str
    scheduled_for: datetime | None
    due_at: datetime
    status: RunStatus  # QUEUED, or SKIPPED / MISSED (terminal at birth)
    trigger: Trigger = Trigger.SCHEDULE
    error_message: str | None = None
    output: Any = None
    counts: bool = True  # counts toward max_runs
    input: Any = None  # what the run is given (an event's body, an upstream run)
    #: The W3C trace context the run carries (see `Run.traceparent`).
    trace: TraceContext | None = None


def new_run_record(
    task_id: str,
    owner: str,
    max_attempts: int,
    new: NewRun,
    now: datetime,
    instant: Instant | None = None,
) -> Run:
    """The record of a new run (of a fire, a manual or a chained run) as a store writes it at
    `now`: queued (attempt 0) or terminal at birth (skipped, missed); with `instant`, finished
    in its first attempt at `now` (see `FirePlan.instant`)."""
    settled = instant is not None
    return run_from_values(
        (
            new.id,
            task_id,
            owner,
            new.trigger,
            new.scheduled_for,
            new.due_at,
            RunStatus.SUCCESS if settled else new.status,
            1 if settled else 0,  # attempt
            max_attempts,
            now,  # created_at
            now if settled else None,  # started_at
            now if settled or new.status.is_terminal else None,  # finished_at
            0 if settled else None,  # duration_ms
            new.output if instant is None else instant.output,
            None if settled else new.error_message,
            None,  # claimed_by
            None,  # lease_expires_at
            False,  # cancel_requested
            new.input,
            *trace_columns(new.trace),  # traceparent, tracestate
        )
    )


def dependency_run(upstream: Task, run: Run, trace: TraceContext | None = None) -> NewRun:
    """The run a task that depends on `upstream` gets when `run` of it succeeded, carrying
    `trace` (the upstream run's trace context)."""
    assert run.finished_at is not None
    return NewRun(
        id=new_id("run"),
        scheduled_for=None,
        due_at=run.finished_at,
        status=RunStatus.QUEUED,
        trigger=Trigger.DEPENDENCY,
        input={
            "task": {"id": upstream.id, "name": upstream.name},
            "run": {
                "id": run.id,
                "status": str(run.status),
                "output": run.output,
                "finishedAt": run.finished_at.isoformat().replace("+00:00", "Z"),
                "trigger": str(run.trigger),
            },
        },
        trace=trace,
    )


@dataclass(frozen=True, slots=True)
class NewEvent:
    type: EventType
    task_id: str | None
    run_id: str | None
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TaskEnd:
    status: TaskStatus  # COMPLETED or EXPIRED
    reason: str | None  # "max_runs_reached" | "expired_at_reached" | None


@dataclass(frozen=True, slots=True)
class Instant:
    """A plan's runs end as they are born: the task's action calls nothing outside and cannot
    fail (`actions.InstantExecutor`), so its output is known when the fire is recorded."""

    output: Any = None


@dataclass(frozen=True, slots=True)
class FirePlan:
    """What the engine decided for one claimed task: its new runs and how the task moves on.

    With `instant`, each new queued run due by the pass's `now` is written finished instead:
    success in its first attempt (started and finished at `now`, duration 0, the instant's
    output), with its event, in the transaction that records the fire. The engine sets it only
    when no other run of the task is unfinished, so no overlap policy is bypassed."""

    task_id: str
    runs: Sequence[NewRun]
    next_fire_at: datetime | None
    last_fire_at: datetime | None
    end: TaskEnd | None = None
    cancel_run_ids: Sequence[str] = ()
    events: Sequence[NewEvent] = ()
    instant: Instant | None = None

    def instant_for(self, new: NewRun, now: datetime) -> Instant | None:
        """How `new`, one of this plan's runs, ends at birth in a pass at `now`: the plan's
        instant for a queued run already due, None for any other run."""
        if new.status == RunStatus.QUEUED and new.due_at <= now:
            return self.instant
        return None


@dataclass(frozen=True, slots=True)
class FireResult:
    runs: list[Run]  # the runs actually created (a fire already recorded creates none)
    events: list[Event]
    lost_task_ids: list[str]  # plans refused because the claim was no longer ours
    #: The runs of `runs` written finished at birth (`FirePlan.instant`), in plan order.
    settled: list[Run] = field(default_factory=list)


#: The engine's decision for one claimed task (`policies.plan_fires`); None leaves the task as
#: it was (it could not be planned). Called inside the store's transaction: must not block.
Planner = Callable[[DueTask], FirePlan | None]


@dataclass(frozen=True, slots=True)
class PassResult:
    """What one `fire_and_start` did."""

    fired: FireResult
    plans: list[FirePlan]
    #: How many due tasks were claimed (a full batch means more may be due).
    claimed: int
    #: Runs started, each with its task.
    started: list[tuple[Run, Task]]
    #: The batch of due tasks was full (the store may take fewer than `limit` at a time):
    #: more may be due.
    more: bool = False
