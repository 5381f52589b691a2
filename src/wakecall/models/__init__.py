"""The nouns of wakecall: what agents and operators send (task specs and the action specs in
them, validated at the edge) and the records the store keeps.

- `statuses`: the states and kinds (task, run, attempt and delivery statuses, triggers, policies,
  event types);
- `actions`: the action specs (`wakeup`, `noop`, `webhook`, `command`);
- `specs`: `TaskSpec`, `TaskPatch` and the policies in them;
- `records`: `Task`, `Run`, `Attempt`, `Event`, `Delivery`, plain frozen records for the hot path;
- `payloads`: what a run's or a task's event carries.

This layer knows no storage and no executor.
"""

from __future__ import annotations

from wakecall.errors import invalid_input_from
from wakecall.models.actions import Action, CommandAction, NoopAction, WakeupAction, WebhookAction
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
)
from wakecall.models.statuses import (
    CALLBACK_EVENTS,
    TERMINAL_RUN_STATUSES,
    AttemptStatus,
    CatchUp,
    DeliveryStatus,
    EventType,
    Overlap,
    RunStatus,
    TaskStatus,
    Trigger,
)

__all__ = [
    "CALLBACK_EVENTS",
    "MAX_NAME_LENGTH",
    "MAX_RUNS",
    "TERMINAL_RUN_STATUSES",
    "Action",
    "Attempt",
    "AttemptStatus",
    "CatchUp",
    "ClearableField",
    "CommandAction",
    "ConcurrencySpec",
    "ConditionSpec",
    "Delivery",
    "DeliveryStatus",
    "Duration",
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
    "event_type_for",
    "invalid_input_from",
    "retry_policy_from_json",
    "run_event_payload",
    "run_from_values",
    "task_event_payload",
    "task_from_values",
    "task_stats",
    "task_summary",
]
