"""What agents and operators send to make and change a task: `TaskSpec`, `TaskPatch` and the
policies in them, validated at the edge (pydantic). The engine parses the schedule."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from wakecall.models.actions import Action, WakeupAction
from wakecall.models.statuses import CatchUp, Overlap
from wakecall.schedules import format_duration, parse_duration

__all__ = [
    "MAX_NAME_LENGTH",
    "MAX_PAUSE_AFTER_FAILURES",
    "MAX_RUNS",
    "ClearableField",
    "ConcurrencySpec",
    "ConditionSpec",
    "Duration",
    "RateLimitSpec",
    "RetryPolicy",
    "TaskPatch",
    "TaskSpec",
    "TriggerSpec",
    "retry_policy_from_json",
]

MAX_NAME_LENGTH = 200
#: The largest `max_runs` (the stores keep counts as 64-bit integers).
MAX_RUNS = 1_000_000_000
#: The largest `pause_after_failures`. The task keeps the id of each run of its failure streak
#: and the note of the pause names them all: 100 ids are about 3 KB, still readable.
MAX_PAUSE_AFTER_FAILURES = 100


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


#: A flow-control key: the same key on several tasks of an owner shares one limit.
_FLOW_KEY = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:@/-]+$")


class ConcurrencySpec(_Model):
    """At most `limit` runs at once (running) across the owner's tasks with this `key`; runs
    over it wait queued and start, oldest first, as runs with the key end."""

    key: str = _FLOW_KEY
    limit: int = Field(ge=1, le=1000)

    def to_record(self) -> dict[str, Any]:
        """As a task record keeps it."""
        return {"key": self.key, "limit": self.limit}


class RateLimitSpec(_Model):
    """At most `limit` run starts in any `period` (a rolling window) across the owner's tasks
    with this `key`; runs over it wait queued until the window lets them start."""

    key: str = _FLOW_KEY
    limit: int = Field(ge=1, le=10_000)
    period: Duration

    @field_validator("period")
    @classmethod
    def _period_bounds(cls, v: timedelta) -> timedelta:
        if not timedelta(seconds=1) <= v <= timedelta(hours=24):
            raise ValueError("period must be between 1s and 24h, e.g. '1m'")
        return v

    def to_record(self) -> dict[str, Any]:
        """As a task record keeps it (the period in seconds)."""
        return {"key": self.key, "limit": self.limit, "period_s": self.period.total_seconds()}


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
    max_runs: int | None = Field(None, ge=1, le=MAX_RUNS)
    expires_at: datetime | None = None
    #: Pause the task after this many failed runs in a row (failure or timeout, retries spent);
    #: 0 or none: never (0 as in Airflow's `max_consecutive_failed_dag_runs`).
    pause_after_failures: int | None = Field(None, ge=0, le=MAX_PAUSE_AFTER_FAILURES)
    active: bool = True
    callback_url: str | None = Field(None, max_length=2048)
    metadata: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)
    depends_on: str | None = Field(None, min_length=1, max_length=100)
    trigger: TriggerSpec | None = None
    condition: ConditionSpec | None = None
    concurrency: ConcurrencySpec | None = None
    rate_limit: RateLimitSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _chains_need_no_schedule(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("schedule") is None and data.get("depends_on"):
            return {**data, "schedule": "on demand"}
        return data

    @field_validator("pause_after_failures")
    @classmethod
    def _zero_is_never(cls, v: int | None) -> int | None:
        return v or None

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
            raise ValueError(
                "expires_at needs a UTC offset: end it with 'Z' or one such as '+01:00'"
            )
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
    "concurrency",
    "rate_limit",
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
    max_runs: int | None = Field(None, ge=1, le=MAX_RUNS)
    expires_at: datetime | None = None
    #: 0 (or null) turns the pause after failures off; given, the count starts afresh.
    pause_after_failures: int | None = Field(None, ge=0, le=MAX_PAUSE_AFTER_FAILURES)
    callback_url: str | None = Field(None, max_length=2048)
    metadata: dict[str, Any] | None = None
    #: null ends the chain (the task then needs a schedule to fire by the clock).
    depends_on: str | None = Field(None, min_length=1, max_length=100)
    #: null turns inbound events off; given, a new trigger secret is issued.
    trigger: TriggerSpec | None = None
    #: null removes the check.
    condition: ConditionSpec | None = None
    #: null removes the limit.
    concurrency: ConcurrencySpec | None = None
    rate_limit: RateLimitSpec | None = None

    _positive_timeout = field_validator("timeout")(TaskSpec._positive_timeout.__func__)  # type: ignore[attr-defined]
    _aware = field_validator("expires_at")(TaskSpec._aware.__func__)  # type: ignore[attr-defined]
    _zero_is_never = field_validator("pause_after_failures")(
        TaskSpec._zero_is_never.__func__  # type: ignore[attr-defined]
    )


@lru_cache(maxsize=4096)
def retry_policy_from_json(text: str) -> RetryPolicy:
    """A stored retry policy, parsed once per distinct text (policies are immutable)."""
    return RetryPolicy.model_validate_json(text)


@lru_cache(maxsize=4096)
def retry_policy_to_json(policy: RetryPolicy) -> str:
    """A retry policy as stored, written once per distinct policy: the tasks of a large file
    or a busy owner share a few (policies are immutable and compare by value)."""
    return policy.model_dump_json()
