"""Rows of the PostgreSQL store: records to rows and back, and the values `jsonb` and `text`
refuse (NUL, NaN and infinities) made safe."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from wakecall.models import (
    Delivery,
    DeliveryStatus,
    Event,
    EventType,
    Run,
    Task,
    delivery_type,
    retry_policy_to_json,
)
from wakecall.store.rows import run_from_row, streak_text, task_from_row

# Task fields that a `TaskUpdate` may set, and how each is written.
_UPDATABLE: dict[str, Callable[[Any], Any]] = {
    "name": str,
    "schedule": lambda v: json.dumps(v),
    "timezone": str,
    "action": lambda v: json.dumps(v),
    "retry": retry_policy_to_json,
    "timeout_s": lambda v: v,
    "overlap": str,
    "max_queued": int,
    "catchup": str,
    "catchup_window_s": float,
    "max_runs": lambda v: v,
    "expires_at": lambda v: v,
    "status": str,
    "pause_note": lambda v: v,
    "callback_url": lambda v: v,
    "metadata": lambda v: json.dumps(v),
    "next_fire_at": lambda v: v,
    "last_fire_at": lambda v: v,
    "end_reason": lambda v: v,
    "depends_on": lambda v: v,
    "trigger": lambda v: _dumps_or_none(v),
    "condition": lambda v: _dumps_or_none(v),
    "pause_after_failures": lambda v: v,
    "failure_streak": streak_text,
    "traceparent": lambda v: v,
    "tracestate": lambda v: v,
    "concurrency": lambda v: _dumps_or_none(v),
    "rate_limit": lambda v: _dumps_or_none(v),
}


def _no_nul(text: str | None) -> str | None:
    return None if text is None else text.replace("\x00", "\ufffd")


def _jsonb_safe(value: Any) -> Any:
    """`value` (plain JSON data) with what `jsonb` refuses replaced: NUL characters in strings
    by U+FFFD, NaN and infinities by null."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_jsonb_safe(v) for v in value]
    if isinstance(value, dict):
        return {_jsonb_safe(k): _jsonb_safe(v) for k, v in value.items()}
    return value


def _dumps(value: Any) -> str:
    """JSON text for a `jsonb` column (which keeps its own form of it): the standard
    library's, with what `jsonb` refuses (NaN, the infinities, NUL) made safe."""
    text: str | None
    try:
        text = json.dumps(value, default=str, allow_nan=False)
    except ValueError:  # NaN or an infinity
        text = None
    if text is None or "\\u0000" in text:
        text = json.dumps(_jsonb_safe(json.loads(json.dumps(value, default=str))))
    return text


def _dumps_or_none(value: Any) -> str | None:
    return None if value is None else _dumps(value)


def _same(value: Any) -> Any:
    return value  # asyncpg decodes instants itself


def _task_from_row(row: Sequence[Any]) -> Task:
    """A task from a row whose first columns are `_TASK_COLUMNS`, in that order."""
    return task_from_row(row, _same, _same)


def _run_from_row(row: Sequence[Any]) -> Run:
    """A run from a row whose first columns are `_RUN_COLUMNS`, in that order."""
    return run_from_row(row, _same, _same)


def _task_to_row(task: Task) -> tuple[Any, ...]:
    return (
        task.id,
        task.owner,
        task.name,
        task.kind,
        json.dumps(task.schedule),
        task.timezone,
        json.dumps(task.action),
        retry_policy_to_json(task.retry),
        task.timeout_s,
        str(task.overlap),
        task.max_queued,
        str(task.catchup),
        task.catchup_window_s,
        task.max_runs,
        task.expires_at,
        str(task.status),
        task.pause_note,
        task.callback_url,
        json.dumps(task.metadata),
        task.idempotency_key,
        task.created_at,
        task.updated_at,
        task.next_fire_at,
        task.last_fire_at,
        task.run_count,
        task.claimed_by,
        task.claim_expires_at,
        task.end_reason,
        task.depends_on,
        _dumps_or_none(task.trigger),
        _dumps_or_none(task.condition),
        task.pause_after_failures,
        streak_text(task.failure_streak),
        task.traceparent,
        task.tracestate,
        _dumps_or_none(task.concurrency),
        _dumps_or_none(task.rate_limit),
    )


def _event_from_row(row: Mapping[str, Any]) -> Event:
    return Event(
        cursor=row["cursor"],
        owner=row["owner"],
        type=EventType(row["type"]),
        task_id=row["task_id"],
        run_id=row["run_id"],
        created_at=row["created_at"],
        payload=json.loads(row["payload"]),
    )


def _delivery_from_row(row: Mapping[str, Any]) -> Delivery:
    return Delivery(
        id=row["id"],
        owner=row["owner"],
        task_id=row["task_id"],
        event_cursor=row["event_cursor"],
        event_type=delivery_type(row["event_type"]),
        url=row["url"],
        body=row["body"],
        status=DeliveryStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        created_at=row["created_at"],
        last_status=row["last_status"],
        last_error=row["last_error"],
        delivered_at=row["delivered_at"],
        claimed_by=row["claimed_by"],
        traceparent=row["traceparent"],
        tracestate=row["tracestate"],
    )
