"""The nouns of wakecall: what agents and operators send (task specs and the action specs in
them, validated at the edge) and the records the store keeps.

- `statuses`: the states and kinds (task, run, attempt and delivery statuses, triggers, policies,
  event types);
- `actions`: the action specs (`wakeup`, `noop`, `webhook`, `command`);
- `specs`: `TaskSpec`, `TaskPatch` and the policies in them;
- `records`: `Task`, `Run`, `Attempt`, `Event`, `Delivery`, plain frozen records for the hot path;
- `payloads`: what a run's or a task's event carries;
- `failures`: when failed runs pause their task (`pause_after_failures`).

This layer knows no storage and no executor.
"""

from __future__ import annotations

from wakecall.errors import invalid_input_from
from wakecall.models.actions import Action, CommandAction, NoopAction, WakeupAction, WebhookAction
from wakecall.models.failures import (
    FAILED_RUN_STATUSES,
    PAUSED_BY_FAILURES,
    failures_pause_note,
    failures_paused_payload,
    pauses_for_failures,
    streak_after,
)
from wakecall.models.payloads import (
    event_type_for,
    run_event_payload,
    task_event_payload,
    task_stats,
    task_summary,
)
from wakecall.models.records import (
    Attempt,
    Delivery,
    Event,
    Run,
    Task,
    run_from_values,
    task_from_values,
)
from wakecall.models.specs import (
    MAX_NAME_LENGTH,
    MAX_PAUSE_AFTER_FAILURES,
    MAX_RUNS,
    ClearableField,
    ConcurrencySpec,
    ConditionSpec,
    Duration,
    RateLimitSpec,
    RetryPolicy,
    TaskPatch,
    TaskSpec,
    TriggerSpec,
    retry_policy_from_json,
    retry_policy_to_json,
)
from wakecall.models.statuses import (
    CALLBACK_EVENTS,
    TERMINAL_RUN_STATUSES,
    AttemptStatus,
    BackfillOverlap,
    CatchUp,
    DeliveryStatus,
    EnvelopeType,
    EventType,
    Overlap,
    RunStatus,
    TaskStatus,
    Trigger,
    delivery_type,
)

__all__ = [
    "CALLBACK_EVENTS",
    "FAILED_RUN_STATUSES",
    "MAX_NAME_LENGTH",
    "MAX_PAUSE_AFTER_FAILURES",
    "MAX_RUNS",
    "PAUSED_BY_FAILURES",
    "TERMINAL_RUN_STATUSES",
    "Action",
    "Attempt",
    "AttemptStatus",
    "BackfillOverlap",
    "CatchUp",
    "ClearableField",
    "CommandAction",
    "ConcurrencySpec",
    "ConditionSpec",
    "Delivery",
    "DeliveryStatus",
    "Duration",
    "EnvelopeType",
    "Event",
    "EventType",
    "NoopAction",
    "Overlap",
    "RateLimitSpec",
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
    "delivery_type",
    "event_type_for",
    "failures_pause_note",
    "failures_paused_payload",
    "invalid_input_from",
    "pauses_for_failures",
    "retry_policy_from_json",
    "retry_policy_to_json",
    "run_event_payload",
    "run_from_values",
    "streak_after",
    "task_event_payload",
    "task_from_values",
    "task_stats",
    "task_summary",
]
