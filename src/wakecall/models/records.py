"""The records the store keeps: tasks, runs, attempts, events and deliveries. Plain frozen
records, built from validated specs only and read and copied on the hot path."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from wakecall.models.specs import RetryPolicy
from wakecall.models.statuses import (
    AttemptStatus,
    CatchUp,
    DeliveryStatus,
    EnvelopeType,
    EventType,
    Overlap,
    RunStatus,
    TaskStatus,
    Trigger,
)
from wakecall.tracecontext import TraceContext, stored_trace

__all__ = [
    "Attempt",
    "Delivery",
    "Event",
    "Run",
    "Task",
    "run_from_values",
    "task_from_values",
]


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    owner: str
    name: str
    kind: Literal["task", "wakeup"]
    schedule: dict[str, Any]  # the parsed schedule's to_spec()
    timezone: str
    action: dict[str, Any]
    retry: RetryPolicy
    timeout_s: float | None
    overlap: Overlap
    max_queued: int
    catchup: CatchUp
    catchup_window_s: float
    max_runs: int | None
    expires_at: datetime | None
    status: TaskStatus
    pause_note: str | None
    callback_url: str | None
    metadata: dict[str, Any]
    idempotency_key: str | None
    created_at: datetime
    updated_at: datetime
    next_fire_at: datetime | None
    last_fire_at: datetime | None
    run_count: int  # runs that count toward max_runs (scheduled, not skipped or missed)
    claimed_by: str | None = None
    claim_expires_at: datetime | None = None
    end_reason: str | None = None
    #: Runs after each success of this task (a chain), with that run's output as input.
    depends_on: str | None = None
    #: Inbound event triggers: {"secret": whsec_..., "token_sha256": ..., "per_minute": N}.
    trigger: dict[str, Any] | None = None
    #: A check before each attempt's action: {"url", "method", "timeout_s"}.
    condition: dict[str, Any] | None = None
    #: Pause the task after this many failed runs in a row (None: never).
    pause_after_failures: int | None = None
    #: The runs that failed in a row since the last success (ids, oldest first, at most
    #: `pause_after_failures`; counted only while it is set, see `models.failures`).
    failure_streak: tuple[str, ...] = ()
    #: The W3C trace context of the call that created the task (`wakecall.tracecontext`): the
    #: runs of its first fire carry it.
    traceparent: str | None = None
    tracestate: str | None = None
    #: Flow control by key: {"key", "limit"} (runs at once across the owner's tasks with key).
    concurrency: dict[str, Any] | None = None
    #: {"key", "limit", "period_s"}: run starts per rolling period across those tasks.
    rate_limit: dict[str, Any] | None = None

    def replace(self, **changes: Any) -> Task:
        return _replace(self, changes)

    @property
    def trace(self) -> TraceContext | None:
        """The trace context the task's next fire passes on to its runs: the creating call's
        until the task first fired, then None (later fires were not started by that call)."""
        if self.last_fire_at is not None:
            return None
        return stored_trace(self.traceparent, self.tracestate)

    @property
    def flow_controlled(self) -> bool:
        """Whether a concurrency or rate limit by key applies to its runs."""
        return self.concurrency is not None or self.rate_limit is not None

    @property
    def remaining_runs(self) -> int | None:
        return None if self.max_runs is None else max(self.max_runs - self.run_count, 0)


@dataclass(frozen=True, slots=True)
class Run:
    id: str
    task_id: str
    owner: str
    trigger: Trigger
    scheduled_for: datetime | None  # the nominal fire; None for manual runs
    due_at: datetime  # when the next attempt may start (fire + jitter, or a retry's time)
    status: RunStatus
    attempt: int  # the current (or last) attempt number, 1-based; 0 before the first starts
    max_attempts: int
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    output: Any = None
    error_message: str | None = None
    claimed_by: str | None = None
    lease_expires_at: datetime | None = None
    cancel_requested: bool = False
    #: What the run was given: an event's body, or the upstream run of a chain.
    input: Any = None
    #: The W3C trace context of the call that started the run (a tool call's `_meta`): each
    #: attempt and each callback delivery sends a child of it.
    traceparent: str | None = None
    tracestate: str | None = None

    def replace(self, **changes: Any) -> Run:
        return _replace(self, changes)

    @property
    def trace(self) -> TraceContext | None:
        return stored_trace(self.traceparent, self.tracestate)


def _record_makers(
    cls: type[_R],
) -> tuple[Callable[[Sequence[Any]], _R], Callable[[_R, dict[str, Any]], _R], frozenset[str]]:
    """For a frozen slotted record class: a function building one from all its field values in
    declaration order, one copying one with some fields changed, and its field names.

    Records are built on hot paths (each row read, each copy), where the generated `__init__`
    costs a call per field through `object.__setattr__` and a loop over the fields costs
    nearly as much again; these write each slot directly, one line per field (generated here
    once, as `dataclasses` generates `__init__`)."""
    names = [f.name for f in dataclasses.fields(cls)]
    env: dict[str, Any] = {"new": object.__new__, "cls": cls}
    env.update((f"set_{name}", cls.__dict__[name].__set__) for name in names)
    build = ["def build(values):", f"    ({', '.join(names)},) = values", "    record = new(cls)"]
    build += [f"    set_{name}(record, {name})" for name in names]
    build.append("    return record")
    copy = ["def copy(record, changes):", "    made = new(cls)"]
    copy += [
        f"    set_{name}(made, changes[{name!r}] if {name!r} in changes else record.{name})"
        for name in names
    ]
    copy.append("    return made")
    exec("\n".join(build + copy), env)
    return env["build"], env["copy"], frozenset(names)


_R = TypeVar("_R", "Task", "Run")
_build_task, _copy_task, _TASK_FIELDS = _record_makers(Task)
_build_run, _copy_run, _RUN_FIELDS = _record_makers(Run)


def task_from_values(values: Sequence[Any]) -> Task:
    """A `Task` from all its field values in declaration order (decoded by a store)."""
    return _build_task(values)


def run_from_values(values: Sequence[Any]) -> Run:
    """A `Run` from all its field values in declaration order (decoded by a store)."""
    return _build_run(values)


def _replace(record: _R, changes: dict[str, Any]) -> _R:
    """`dataclasses.replace` for these frozen records, at a fraction of its cost."""
    is_task = type(record) is Task
    unknown = changes.keys() - (_TASK_FIELDS if is_task else _RUN_FIELDS)
    if unknown:
        raise TypeError(f"{type(record).__name__} has no field {', '.join(sorted(unknown))}")
    return (_copy_task if is_task else _copy_run)(record, changes)  # type: ignore[return-value,arg-type]


@dataclass(frozen=True, slots=True)
class Attempt:
    run_id: str
    number: int
    status: AttemptStatus
    started_at: datetime
    finished_at: datetime | None = None
    error_message: str | None = None
    node: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    cursor: int  # strictly increasing across the log; per owner a strictly increasing sequence
    owner: str
    type: EventType
    task_id: str | None
    run_id: str | None
    created_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event (or a webhook subscription's control envelope) sent to one callback URL;
    retried until delivered or dead-lettered."""

    id: str  # the `webhook-id`, stable across retries
    owner: str
    task_id: str | None
    event_cursor: int
    event_type: EventType | EnvelopeType
    url: str
    body: str  # the exact JSON sent on every attempt
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    claimed_by: str | None = None
    #: The trace context of the event's run (or task): each attempt sends a child of it.
    traceparent: str | None = None
    tracestate: str | None = None

    @property
    def trace(self) -> TraceContext | None:
        return stored_trace(self.traceparent, self.tracestate)
