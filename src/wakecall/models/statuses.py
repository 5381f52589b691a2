"""The states and kinds of things: task, run and attempt statuses, triggers, policies, event
types and delivery statuses."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "CALLBACK_EVENTS",
    "TERMINAL_RUN_STATUSES",
    "AttemptStatus",
    "BackfillOverlap",
    "CatchUp",
    "DeliveryStatus",
    "EventType",
    "Overlap",
    "RunStatus",
    "TaskStatus",
    "Trigger",
]


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
    BACKFILL = "backfill"  # a past fire queued again by backfill


class Overlap(StrEnum):
    SKIP = "skip"
    QUEUE = "queue"
    CANCEL_PREVIOUS = "cancel_previous"
    ALLOW = "allow"


class BackfillOverlap(StrEnum):
    """How the runs of one backfill meet each other and the task's other runs."""

    SKIP = "skip"  # a slot whose turn comes while a run of the task is unfinished is skipped
    QUEUE = "queue"  # one after another, in slot order
    ALLOW = "allow"  # side by side


class CatchUp(StrEnum):
    LATEST = "latest"
    ALL = "all"
    SKIP = "skip"


class EventType(StrEnum):
    RUN_COMPLETED = "task.run.completed"
    RUN_FAILED = "task.run.failed"
    RUN_MISSED = "task.run.missed"
    RUN_STALE = "task.run.stale"
    TASK_PAUSED = "task.paused"  # by wakecall itself (pause_after_failures, circuit breaker)
    RUN_SKIPPED = "task.run.skipped"  # the task's condition said not to proceed
    TASK_EXPIRED = "task.expired"
    WAKEUP_FIRED = "wakeup.fired"


class EnvelopeType(StrEnum):
    """What a webhook subscription is sent besides its events: the Events extension's control
    envelopes that go through the delivery queue."""

    GAP = "gap"  # events after the subscription's position were pruned before it was fed them
    TERMINATED = "terminated"  # the server ended the subscription


def delivery_type(value: str) -> EventType | EnvelopeType:
    """What a stored delivery carries: an event of that type, or a control envelope."""
    try:
        return EventType(value)
    except ValueError:
        return EnvelopeType(value)


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
