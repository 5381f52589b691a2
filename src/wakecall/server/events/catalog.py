"""wakecall's event types as the Events extension lists them: each with its delivery modes,
the schema of subscription arguments, and the schema of the `data` its occurrences carry
(what an occurrence looks like is `delivery.occurrences`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wakecall.models import EventType

__all__ = [
    "DELIVERY_MODES",
    "EVENT_TYPES",
    "INPUT_SCHEMA",
    "EventTypeInfo",
    "known",
    "listing",
]

DELIVERY_MODES = ("poll", "push", "webhook")

#: Subscription arguments every event type takes.
INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "taskIds": {
            "type": "array",
            "items": {"type": "string"},
            "description": "only events of these tasks (default: every task of yours)",
        },
        "metadata": {
            "type": "object",
            "description": "only events of tasks whose metadata holds every given key with an "
            'equal value, e.g. {"team": "ops"}',
        },
    },
    "additionalProperties": False,
}

_NULLABLE_STRING = {"type": ["string", "null"]}
_TASK = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "metadata": {"type": "object"},
    },
    "required": ["id", "name", "metadata"],
}
_RUN = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "status": {
            "enum": ["success", "failure", "timeout", "cancelled", "skipped", "missed", "running"]
        },
        "output": {},
        "errorMessage": _NULLABLE_STRING,
        "durationMs": {"type": ["integer", "null"]},
        "attempt": {"type": "integer"},
        "trigger": {"type": "string"},
        "scheduledFor": {"type": ["string", "null"], "format": "date-time"},
        "input": {},
    },
    "required": ["id", "status"],
}
_STATS = {
    "type": "object",
    "properties": {
        "totalRuns": {"type": "integer"},
        "remainingRuns": {"type": ["integer", "null"]},
        "expiresAt": {"type": ["string", "null"], "format": "date-time"},
    },
}
_LATE = {
    "type": ["object", "null"],
    "description": "how late the run's fire was recorded, and why (null: on time)",
    "properties": {"byS": {"type": "number"}, "reason": {"const": "catchup"}},
    "required": ["byS", "reason"],
}


def _payload_schema(
    *, run: bool, extra: Mapping[str, Any] = {}, need: tuple[str, ...] = ()
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "task": _TASK,
        "run": _RUN if run else {"type": "null"},
        "stats": _STATS,
        "reason": _NULLABLE_STRING,
        **extra,
    }
    if run:
        properties["late"] = _LATE
    return {
        "type": "object",
        "properties": properties,
        "required": ["task", "run", "stats", "reason", *need],
    }


@dataclass(frozen=True)
class EventTypeInfo:
    name: EventType
    description: str
    payload_schema: dict[str, Any]

    def listed(self) -> dict[str, Any]:
        return {
            "name": str(self.name),
            "description": self.description,
            "delivery": list(DELIVERY_MODES),
            "inputSchema": INPUT_SCHEMA,
            "payloadSchema": self.payload_schema,
        }


_WAKEUP = {
    "type": "object",
    "properties": {"reason": {"type": "string"}, "context": {}},
    "required": ["reason"],
}
_HEARTBEAT = {
    "type": "object",
    "properties": {"silentS": {"type": "number"}, "killed": {"type": "boolean"}},
}

EVENT_TYPES: tuple[EventTypeInfo, ...] = (
    EventTypeInfo(
        EventType.RUN_COMPLETED,
        "A run of a task succeeded; `data.run.output` is what its action returned.",
        _payload_schema(run=True),
    ),
    EventTypeInfo(
        EventType.RUN_FAILED,
        "A run of a task failed, timed out or was cancelled after its last attempt; "
        "`data.run.errorMessage` says why.",
        _payload_schema(run=True),
    ),
    EventTypeInfo(
        EventType.RUN_MISSED,
        "Fires of a task were not run: they came due while no scheduler ran, or longer ago "
        "than the task's catch-up window.",
        _payload_schema(run=True),
    ),
    EventTypeInfo(
        EventType.RUN_SKIPPED,
        "A run was recorded but not run: the previous one was still running (overlap "
        "policy), or the task's condition said not to proceed.",
        _payload_schema(run=True),
    ),
    EventTypeInfo(
        EventType.RUN_STALE,
        "A running run has given no sign of life for the heartbeat timeout.",
        _payload_schema(run=True, extra={"heartbeat": _HEARTBEAT}),
    ),
    EventTypeInfo(
        EventType.TASK_EXPIRED,
        "A task ended: it reached max_runs or its expires_at (`data.reason`).",
        _payload_schema(run=False),
    ),
    EventTypeInfo(
        EventType.TASK_PAUSED,
        "wakecall paused a task itself: `data.reason` is `failures` when its last "
        "pause_after_failures runs failed (`data.failedRuns` names them), `circuit_breaker` "
        "when its inbound trigger got too many events; `data.note` says what to do.",
        _payload_schema(
            run=False,
            extra={
                "note": _NULLABLE_STRING,
                "failedRuns": {"type": "array", "items": {"type": "string"}},
            },
        ),
    ),
    EventTypeInfo(
        EventType.WAKEUP_FIRED,
        "A wakeup you scheduled came due: `data.wakeup` holds the reason and context you "
        "left for yourself.",
        _payload_schema(run=True, extra={"wakeup": _WAKEUP}, need=("wakeup",)),
    ),
)

_BY_NAME = {str(info.name): info for info in EVENT_TYPES}


def listing() -> list[dict[str, Any]]:
    return [info.listed() for info in EVENT_TYPES]


def known(name: str) -> bool:
    return name in _BY_NAME
