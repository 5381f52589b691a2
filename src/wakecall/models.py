"""The nouns of wakecall: task specs at the edge, and the records the store keeps.

`TaskSpec`, `TaskPatch`, `RetryPolicy` and the actions are pydantic models: they validate what
agents and operators send. `Task`, `Run`, `Attempt` and `Event` are plain frozen records that the
store reads and writes on the hot path; they are built from validated specs only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from wakecall.actions.command import CommandAction
from wakecall.actions.webhook import WebhookAction
from wakecall.errors import invalid_input_from
from wakecall.schedules import format_duration, parse_duration

__all__ = [
    "CALLBACK_EVENTS",
    "MAX_METADATA_BYTES",
    "MAX_NAME_LENGTH",
    "TERMINAL_RUN_STATUSES",
    "Action",
    "Attempt",
    "AttemptStatus",
    "CatchUp",
    "ClearableField",
    "CommandAction",
    "ConditionSpec",
    "Delivery",
    "DeliveryStatus",
    "Duration",
    "Event",
    "EventType",
    "NoopAction",
    "Overlap",
    "RetryPolicy",
    "Run",
    "RunStatus",
    "Task",
    "TaskPatch",
    "TaskSpec",
    "TaskStatus",
    "Trigger",
    "TriggerSpec",
    "WakeupAction",
    "WebhookAction",
    "invalid_input_from",
]

MAX_NAME_LENGTH = 200
MAX_METADATA_BYTES = 16 * 1024


class TaskStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"  # a schedule with no more fires (a once that fired)
    EXPIRED = "expired"  # ended by max_runs or expires_at


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    MISSED = "missed"

    @property
    def is_terminal(self) -> bool:
        return self is not RunStatus.QUEUED and self is not RunStatus.RUNNING


TERMINAL_RUN_STATUSES = frozenset(s for s in RunStatus if s.is_terminal)


class AttemptStatus(StrEnum):
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # its lease expired: the process running it died
    SKIPPED = "skipped"  # the task's condition said not to proceed


class Trigger(StrEnum):
    """What started a run. Every kind goes through the same queue and dispatcher."""

    SCHEDULE = "schedule"
    MANUAL = "manual"  # run_now, or the command line
    CATCHUP = "catchup"
    WAKEUP = "wakeup"  # a wakeup the agent scheduled for itself
    EVENT = "event"  # POST /triggers/{task_id}
    DEPENDENCY = "dependency"  # the task it depends on succeeded


class Overlap(StrEnum):
    SKIP = "skip"
    QUEUE = "queue"
    CANCEL_PREVIOUS = "cancel_previous"
    ALLOW = "allow"


class CatchUp(StrEnum):
    LATEST = "latest"
    ALL = "all"
    SKIP = "skip"


class EventType(StrEnum):
    RUN_COMPLETED = "task.run.completed"
    RUN_FAILED = "task.run.failed"
    RUN_MISSED = "task.run.missed"
    RUN_STALE = "task.run.stale"
    TASK_PAUSED = "task.paused"  # by wakecall itself (the trigger circuit breaker)
    RUN_SKIPPED = "task.run.skipped"  # the task's condition said not to proceed
    TASK_EXPIRED = "task.expired"
    WAKEUP_FIRED = "wakeup.fired"


def _duration(value: Any) -> timedelta:
    return parse_duration(value)


#: A length of time: "30s", "5m", "1h30m", or a number of seconds.
Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(format_duration, return_type=str),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryPolicy(_Model):
    """How a failed or timed-out attempt is retried. `attempts` counts the first one too."""

    attempts: int = Field(1, ge=1, le=20, description="total attempts, the first included")
    backoff: Literal["none", "linear", "exponential"] = "exponential"
    delay: Duration = Field(timedelta(seconds=1), description="wait before the first retry")
    max_delay: Duration = Field(timedelta(hours=1), description="cap on any single wait")
    jitter: bool = Field(True, description="add up to 10% random extra to each wait")

    def wait_before(self, attempt: int) -> timedelta:
        """The wait before attempt number `attempt` (2 for the first retry), without jitter."""
        n = max(attempt - 1, 1)
        if self.backoff == "none":
            wait = self.delay
        elif self.backoff == "linear":
            wait = self.delay * n
        else:
            wait = self.delay * (2 ** min(n - 1, 30))
        return min(wait, self.max_delay)


class NoopAction(_Model):
    """Does nothing and succeeds: useful for tests and for tasks that only produce events."""

    type: Literal["noop"] = "noop"


class WakeupAction(_Model):
    """Calls nothing outside: the run's result is the event that wakes the agent."""

    type: Literal["wakeup"] = "wakeup"
    reason: str = Field("", max_length=2000, description="what the agent should do when woken")
    context: Any = Field(None, description="any JSON, handed back at wake time")


Action = Annotated[
    NoopAction | WakeupAction | WebhookAction | CommandAction, Field(discriminator="type")
]


class ConditionSpec(_Model):
    """A check before each attempt: wakecall calls `url` (POST with the task and run as JSON,
    or GET) and proceeds on a 2xx answer unless its JSON says `{"proceed": false, "reason":
    "..."}`, in which case the run is recorded as skipped with that reason. Any other answer,
    or no answer within `timeout`, fails the attempt (retried per the task's policy)."""

    url: str = Field(max_length=2048)
    method: Literal["GET", "POST"] = "POST"
    timeout: Duration = timedelta(seconds=10)

    @field_validator("timeout")
    @classmethod
    def _bounded(cls, v: timedelta) -> timedelta:
        if not timedelta(0) < v <= timedelta(minutes=5):
            raise ValueError("timeout must be above 0 and at most 5m, e.g. '10s'")
        return v


class TriggerSpec(_Model):
    """Let inbound HTTP events start the task: `POST /triggers/{task_id}` with the task's
    trigger secret (a Standard Webhooks signature, or `Authorization: Bearer <secret>`); the
    request's JSON body is the run's input."""

    per_minute: int = Field(
        60,
        ge=1,
        le=6000,
        description="events a minute; more trips the circuit breaker, which pauses the task",
    )


class TaskSpec(_Model):
    """Everything needed to create a task. The schedule stays as given here; the engine parses
    it (with the zone, `now` and the configured bounds) before anything is stored. A task that
    `depends_on` another needs no schedule of its own ("on demand")."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    schedule: str | dict[str, Any]
    timezone: str = "UTC"
    jitter: Duration | None = None
    action: Action = Field(default_factory=WakeupAction)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout: Duration | None = Field(None, description="per attempt")
    overlap: Overlap = Overlap.SKIP
    max_queued: int = Field(1, ge=1, le=100)
    catchup: CatchUp = CatchUp.LATEST
    catchup_window: Duration = timedelta(hours=1)
    max_runs: int | None = Field(None, ge=1)
    expires_at: datetime | None = None
    active: bool = True
    callback_url: str | None = Field(None, max_length=2048)
    metadata: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)
    depends_on: str | None = Field(None, min_length=1, max_length=100)
    trigger: TriggerSpec | None = None
    condition: ConditionSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _chains_need_no_schedule(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("schedule") is None and data.get("depends_on"):
            return {**data, "schedule": "on demand"}
        return data

    @field_validator("timeout")
    @classmethod
    def _positive_timeout(cls, v: timedelta | None) -> timedelta | None:
        if v is not None and v <= timedelta(0):
            raise ValueError("timeout must be positive, e.g. '30s'")
        return v

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("expires_at needs a UTC offset, e.g. '2026-12-31T23:59:00Z'")
        return v

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, v: dict[str, Any]) -> dict[str, Any]:
        _check_json_size(v, "metadata")
        return v


#: The fields a patch may reset to their default (none or empty).
ClearableField = Literal[
    "timeout",
    "max_runs",
    "expires_at",
    "callback_url",
    "jitter",
    "metadata",
    "depends_on",
    "trigger",
    "condition",
]


class TaskPatch(_Model):
    """The mutable fields of a task; only the fields given change."""

    name: str | None = Field(None, min_length=1, max_length=MAX_NAME_LENGTH)
    schedule: str | dict[str, Any] | None = None
    timezone: str | None = None
    jitter: Duration | None = None
    action: Action | None = None
    retry: RetryPolicy | None = None
    timeout: Duration | None = None
    overlap: Overlap | None = None
    max_queued: int | None = Field(None, ge=1, le=100)
    catchup: CatchUp | None = None
    catchup_window: Duration | None = None
    max_runs: int | None = Field(None, ge=1)
    expires_at: datetime | None = None
    callback_url: str | None = Field(None, max_length=2048)
    metadata: dict[str, Any] | None = None
    #: null ends the chain (the task then needs a schedule to fire by the clock).
    depends_on: str | None = Field(None, min_length=1, max_length=100)
    #: null turns inbound events off; given, a new trigger secret is issued.
    trigger: TriggerSpec | None = None
    #: null removes the check.
    condition: ConditionSpec | None = None

    _positive_timeout = field_validator("timeout")(TaskSpec._positive_timeout.__func__)  # type: ignore[attr-defined]
    _aware = field_validator("expires_at")(TaskSpec._aware.__func__)  # type: ignore[attr-defined]

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None:
            _check_json_size(v, "metadata")
        return v


def _check_json_size(value: Any, name: str) -> None:
    import json

    size = len(json.dumps(value, default=str))
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"{name} is {size} bytes of JSON; at most {MAX_METADATA_BYTES} allowed")


# --- records -------------------------------------------------------------------------------


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

    def replace(self, **changes: Any) -> Task:
        return _replace(self, changes)

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

    def replace(self, **changes: Any) -> Run:
        return _replace(self, changes)


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


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # dead-lettered: retries exhausted, 410 Gone, or given up


#: Events that go to a task's callback_url.
CALLBACK_EVENTS = frozenset(
    {
        EventType.RUN_COMPLETED,
        EventType.RUN_FAILED,
        EventType.RUN_MISSED,
        EventType.TASK_EXPIRED,
        EventType.WAKEUP_FIRED,
    }
)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event sent to one callback URL; retried until delivered or dead-lettered."""

    id: str  # the `webhook-id`, stable across retries
    owner: str
    task_id: str | None
    event_cursor: int
    event_type: EventType
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


# --- event payloads ------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def task_summary(task: Task) -> dict[str, Any]:
    return {"id": task.id, "name": task.name, "metadata": task.metadata}


def task_stats(task: Task, run_count: int | None = None) -> dict[str, Any]:
    """The task's counts; `run_count` in place of its own (the task as a fire leaves it)."""
    if run_count is None:
        run_count = task.run_count
    return {
        "totalRuns": run_count,
        "remainingRuns": None if task.max_runs is None else max(task.max_runs - run_count, 0),
        "expiresAt": _iso(task.expires_at),
    }


def run_event_payload(task: Task, run: Run, *, run_count: int | None = None) -> dict[str, Any]:
    """The payload of a run's event: the callback shape without `event` and `timestamp`
    (which the event carries itself), plus the fire it was for and, for wakeups, the reason
    and context the agent left for itself. `run_count`: the task's, if not its own (a fire
    recorded in the same transaction moved it on)."""
    payload: dict[str, Any] = {
        "task": task_summary(task),
        "run": {
            "id": run.id,
            "status": str(run.status),
            "output": run.output,
            "errorMessage": run.error_message,
            "durationMs": run.duration_ms,
            "attempt": run.attempt,
            "trigger": str(run.trigger),
            "scheduledFor": _iso(run.scheduled_for),
            "input": run.input,
        },
        "stats": task_stats(task, run_count),
        "reason": None,
    }
    if task.action.get("type") == "wakeup":
        payload["wakeup"] = {
            "reason": task.action.get("reason", ""),
            "context": task.action.get("context"),
        }
        payload["late"] = _lateness(run)
    return payload


#: A fire recorded more than this after its time is late (a wakeup's event says so).
_LATE_AFTER = timedelta(minutes=1)


def _lateness(run: Run) -> dict[str, Any] | None:
    """How late the run's fire was recorded, when more than `_LATE_AFTER`: `byS`, the seconds
    after its time, and `reason`: `catchup` (the scheduler was not running, or the machine
    was asleep, when it came due, and ran it when it caught up). None for a fire on time or
    a run with no fire (manual, chained, an inbound event)."""
    if run.scheduled_for is None:
        return None
    late_by = run.created_at - run.scheduled_for
    if late_by <= _LATE_AFTER:
        return None
    return {"byS": round(late_by.total_seconds(), 3), "reason": "catchup"}


def task_event_payload(task: Task, reason: str | None) -> dict[str, Any]:
    """The payload of a task-level event such as `task.expired`."""
    return {"task": task_summary(task), "run": None, "stats": task_stats(task), "reason": reason}


def event_type_for(task: Task, run: Run) -> EventType:
    if run.status == RunStatus.SUCCESS:
        return EventType.WAKEUP_FIRED if task.kind == "wakeup" else EventType.RUN_COMPLETED
    if run.status == RunStatus.MISSED:
        return EventType.RUN_MISSED
    if run.status == RunStatus.SKIPPED:
        return EventType.RUN_SKIPPED
    return EventType.RUN_FAILED


@lru_cache(maxsize=4096)
def retry_policy_from_json(text: str) -> RetryPolicy:
    """A stored retry policy, parsed once per distinct text (policies are immutable)."""
    return RetryPolicy.model_validate_json(text)
