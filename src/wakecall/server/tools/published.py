"""The input schemas the tools publish: what a model reads before it calls a tool.

Every session of every agent pays for the tool list in context, so these are shaped by hand
rather than generated: the forms of actions, retries and policies are described once, in
`create_task`; `patch_schedule` and `preview_schedule` show only the type of the objects they
share with it (`FROM_CREATE_TASK`); defaults are stated in words once. A duration is shown as
text ('30s', '5m', '1h30m'); the tools also take a number of seconds, which the list leaves out
(it would cost some 70 bytes at each of the dozen places a duration appears). `resolved_schema`
gives the whole of what a tool accepts, and the tools check calls against it, then against
their pydantic parameters (`refusals.ArgumentCheck`); a test holds the two together (same
names, same required set, same ranges), and every number has its range.

They keep to what every host can pass on, Gemini's function declarations included: one `type`
per node (a value of two kinds is an `anyOf`), a `type` beside each `enum`, typed items.

Optional arguments may also be given as `null`, which means "not given".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, get_args

from wakecall.models import MAX_PAUSE_AFTER_FAILURES, MAX_RUNS, ClearableField
from wakecall.schedules import MAX_DURATION_SECONDS

__all__ = [
    "FROM_CREATE_TASK",
    "INPUT_SCHEMAS",
    "MAX_CURSOR",
    "MAX_RUNS",
    "MAX_WAIT_SECONDS",
    "model_facing_size",
    "resolved_schema",
]

#: The largest event cursor (a signed 64-bit integer, as both stores keep it).
MAX_CURSOR = 2**63 - 1
#: The longest `get_events` wait a call may ask for (the server may hold it for less).
MAX_WAIT_SECONDS = 3600


def model_facing_size(tool: Mapping[str, Any]) -> int:
    """Bytes of what a host sends the model for one tool, given as `tools/list` returns it
    (camelCase keys): its name, description and input schema (a host shows neither the title
    nor the output schema to the model), as UTF-8 JSON with the usual separators."""
    shown = {key: tool[key] for key in ("name", "description", "inputSchema") if key in tool}
    return len(json.dumps(shown, ensure_ascii=False).encode())


def _obj(
    properties: dict[str, Any], *required: str, description: str | None = None
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object"}
    if description:
        schema["description"] = description
    schema["properties"] = properties
    if required:
        schema["required"] = list(required)
    schema["additionalProperties"] = False
    return schema


def _int(low: int, high: int, description: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": low, "maximum": high}
    if description:
        schema["description"] = description
    return schema


def _text(description: str | None = None, **limits: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", **limits}
    if description:
        schema["description"] = description
    return schema


class _DurationText(dict[str, Any]):
    """A duration as the model reads it: text. `resolved_schema` adds the number form."""


def _duration(description: str | None = None) -> dict[str, Any]:
    """'30s', '5m', '1h30m' (and, accepted though not shown, a number of seconds)."""
    schema = _DurationText(type="string")
    if description:
        schema["description"] = description
    return schema


def _accepted_duration(node: Mapping[str, Any]) -> dict[str, Any]:
    accepted: dict[str, Any] = {key: value for key, value in node.items() if key != "type"}
    accepted["anyOf"] = [
        {"type": "string"},
        {"type": "number", "minimum": 0, "maximum": MAX_DURATION_SECONDS},
    ]
    return accepted


def _enum(*values: str, description: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "enum": list(values)}
    if description:
        schema["description"] = description
    return schema


_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
_ID = {"type": "string"}
_INSTANT = {"type": "string", "format": "date-time"}
_CURSOR = _text("next_cursor of the last page")
_RUN_STATUS = _enum(
    "queued", "running", "success", "failure", "timeout", "cancelled", "skipped", "missed"
)

_TEXT_OR_OBJECT = [{"type": "string"}, {"type": "object"}]
_SCHEDULE = {
    "anyOf": _TEXT_OR_OBJECT,
    "description": (
        "cron '0 9 * * MON-FRI' (6 fields: seconds first), '@daily', '@every 30m', 'in 5m', "
        "an ISO-8601 instant, 'RRULE:FREQ=WEEKLY;BYDAY=TU', 'on demand' (run_now or events "
        'only), {"type": "daily", "times": ["09:00"], "weekdays": ["MON"]} or '
        '{"type": "interval", "every": "30m"}'
    ),
}
_ACTION = _obj(
    {
        "type": _enum("wakeup", "webhook", "command", "noop"),
        "reason": _text(maxLength=2000),
        "context": {},
        "url": _text(maxLength=2048),
        "method": _enum("GET", "POST", "PUT", "PATCH", "DELETE"),
        "headers": _STRINGS,
        "body": {},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
        "argv": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 256},
        "cwd": _text(),
        "env": _STRINGS,
    },
    "type",
    description=(
        "what a run does; default: wake you with the name. wakeup: reason, context (JSON "
        "returned to you). webhook: url, method (POST), headers, body (JSON), timeout "
        "(s). command: argv, cwd, env (if the operator allows). noop."
    ),
)
_RETRY = _obj(
    {
        "attempts": _int(1, 20),
        "backoff": _enum("none", "linear", "exponential"),
        "delay": _duration(),
        "max_delay": _duration(),
        "jitter": {"type": "boolean"},
    },
    description="attempts count the first; defaults: 1, exponential, delay 1s, max_delay 1h",
)
_TRIGGER = _obj(
    {"per_minute": _int(1, 6000)},
    description="POST /triggers/{id} starts runs (default 60/min; more pauses the task)",
)
_CONDITION = _obj(
    {"url": _text(maxLength=2048), "method": _enum("GET", "POST"), "timeout": _duration()},
    "url",
    description='checked before each attempt; an answer {"proceed": false} skips the run',
)

# Flow control, in few words (the server explains a refusal).
_CONCURRENCY = _obj(
    {"key": {"type": "string"}, "limit": _int(1, 1000)},
    "key",
    "limit",
    description="runs at once per key",
)
_RATE_LIMIT = _obj(
    {"key": {"type": "string"}, "limit": _int(1, 10000), "period": _duration()},
    "key",
    "limit",
    "period",
    description="starts per period per key",
)

_CREATE_TASK = _obj(
    {
        "name": _text(minLength=1, maxLength=200),
        "schedule": {**_SCHEDULE, "description": f"{_SCHEDULE['description']}; or depends_on"},
        "timezone": _text("IANA zone of the schedule; default UTC or a rule's TZID"),
        "action": _ACTION,
        "retry": _RETRY,
        "timeout": _duration("per attempt; durations read '30s', '5m', '1h30m'"),
        "overlap": _enum(
            "skip", "queue", "cancel_previous", "allow", description="if a run is still going"
        ),
        "max_queued": _int(1, 100),
        "catchup": _enum("latest", "all", "skip", description="fires missed while down"),
        "catchup_window": _duration("default 1h"),
        "max_runs": _int(1, MAX_RUNS),
        "expires_at": _INSTANT,
        "pause_after_failures": _int(0, MAX_PAUSE_AFTER_FAILURES),
        "active": {"type": "boolean"},
        "callback_url": _text("results are POSTed here, signed", maxLength=2048),
        "metadata": {"type": "object"},
        "idempotency_key": _text("a repeat returns the same task", minLength=1, maxLength=200),
        "jitter": _duration("spread fires by up to this"),
        "depends_on": _text("run after each success of this task"),
        "trigger": _TRIGGER,
        "condition": _CONDITION,
        "concurrency": _CONCURRENCY,
        "rate_limit": _RATE_LIMIT,
    },
    "name",
)


def _as_in_create_task(name: str) -> dict[str, Any]:
    """`create_task`'s schema of the field `name`, shallow: an object (or a schedule), a text
    or a choice shows only its type (and format); a number keeps its range."""
    node = _CREATE_TASK["properties"][name]
    if "anyOf" in node:
        return {"anyOf": node["anyOf"]}
    if node["type"] in ("integer", "number"):
        return {key: value for key, value in node.items() if key != "description"}
    shallow = {key: node[key] for key in ("type", "format") if key in node}
    return _DurationText(shallow) if isinstance(node, _DurationText) else shallow


#: The fields of each tool that take what `create_task`'s field of the same name takes.
FROM_CREATE_TASK: dict[str, tuple[str, ...]] = {
    "patch_schedule": (
        "schedule",
        "timezone",
        "name",
        "action",
        "retry",
        "timeout",
        "overlap",
        "max_queued",
        "catchup",
        "catchup_window",
        "max_runs",
        "expires_at",
        "pause_after_failures",
        "callback_url",
        "metadata",
        "jitter",
        "depends_on",
        "trigger",
        "condition",
        "concurrency",
        "rate_limit",
    ),
    "preview_schedule": ("schedule",),
}

_PATCH_SCHEDULE = _obj(
    {
        "task_id": _ID,
        **{name: _as_in_create_task(name) for name in FROM_CREATE_TASK["patch_schedule"]},
        "rotate_callback_secret": {"type": "boolean"},
        "clear": {
            "type": "array",
            "description": "fields to reset to their default",
            "items": _enum(*get_args(ClearableField)),
        },
    },
    "task_id",
)

_TASK_ONLY = _obj({"task_id": _ID}, "task_id")

INPUT_SCHEMAS: dict[str, dict[str, Any]] = {
    "create_task": _CREATE_TASK,
    "get_task": _TASK_ONLY,
    "list_tasks": _obj(
        {
            "status": _enum("active", "paused", "completed", "expired"),
            "name": _text("part of the name"),
            "kind": _enum("task", "wakeup"),
            "metadata": {"type": "object", "description": "all these keys equal"},
            "cursor": _CURSOR,
            "limit": _int(1, 100),
        }
    ),
    "patch_schedule": _PATCH_SCHEDULE,
    "pause": _obj({"task_id": _ID, "note": _text()}, "task_id"),
    "resume": _TASK_ONLY,
    "delete": _TASK_ONLY,
    "run_now": _TASK_ONLY,
    "backfill": _obj(
        {
            "task_id": _ID,
            "from": _INSTANT,
            "to": _INSTANT,
            "overlap": _enum("queue", "skip", "allow"),
            "dry_run": {"type": "boolean"},
        },
        "task_id",
        "from",
        "to",
    ),
    "list_runs": _obj(
        {"task_id": _ID, "status": _RUN_STATUS, "cursor": _CURSOR, "limit": _int(1, 100)}
    ),
    "schedule_wakeup": _obj(
        {
            "in": _duration("a delay: '15m', '2h', or seconds"),
            "at": {**_INSTANT, "description": "or a future instant, with its UTC offset"},
            "reason": _text(maxLength=2000),
            "context": {"description": "any JSON, returned when you are woken"},
            "dedupe_key": _text("a repeat returns the first wakeup"),
        }
    ),
    "cancel_wakeup": _obj({"wakeup_id": _ID}, "wakeup_id"),
    "get_events": _obj(
        {
            "after": _int(0, MAX_CURSOR, "cursor; default: the last one you read"),
            "wait": {
                "type": "number",
                "description": "seconds to wait for an event",
                "minimum": 0,
                "maximum": MAX_WAIT_SECONDS,
            },
            "limit": _int(1, 500),
        }
    ),
    "preview_schedule": _obj(
        {
            "schedule": _as_in_create_task("schedule"),
            "timezone": _text("default UTC"),
            "count": _int(1, 50),
            "jitter": _duration(),
        },
        "schedule",
    ),
    "list_deliveries": _obj(
        {
            "status": _enum("pending", "delivered", "failed"),
            "task_id": _ID,
            "cursor": _CURSOR,
            "limit": _int(1, 100),
        }
    ),
    "redeliver": _obj({"delivery_id": _ID}, "delivery_id"),
    "show_tasks": _obj(
        {
            "task_id": _text("whose runs to show"),
            "after": _int(0, MAX_CURSOR, "with wait: answer on news after this cursor"),
            "wait": {"type": "number", "minimum": 0, "maximum": 25},
        }
    ),
}


def resolved_schema(tool: str) -> dict[str, Any]:
    """Everything `tool` accepts: its published schema with each field it shares with
    `create_task` replaced by create_task's schema for it, and each duration given its number
    form."""
    schema = INPUT_SCHEMAS[tool]
    shared = INPUT_SCHEMAS["create_task"]["properties"]
    borrowed = FROM_CREATE_TASK.get(tool, ())
    properties = {
        name: shared[name] if name in borrowed else node
        for name, node in schema["properties"].items()
    }
    return _with_durations_accepted({**schema, "properties": properties})


def _with_durations_accepted(node: Any) -> Any:
    if isinstance(node, _DurationText):
        return _accepted_duration(node)
    if isinstance(node, dict):
        return {key: _with_durations_accepted(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_with_durations_accepted(item) for item in node]
    return node
