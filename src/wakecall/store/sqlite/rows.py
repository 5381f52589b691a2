"""Rows of the SQLite store: the columns of each table, instants as integer microseconds since
the Unix epoch (UTC), and records to rows and back."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from wakecall.models import (
    Delivery,
    DeliveryStatus,
    Event,
    EventType,
    Run,
    Task,
    delivery_type,
    retry_policy_from_json,
    retry_policy_to_json,
)
from wakecall.store.json_text import decode, encode
from wakecall.store.rows import run_from_row, streak_text, task_from_row

_DELIVERY_COLUMNS = (
    "id, owner, task_id, event_cursor, event_type, url, body, status, attempts, "
    "next_attempt_at, created_at, last_status, last_error, delivered_at, claimed_by, traceparent, "
    "tracestate"
)

_TASK_COLUMNS = (
    "id, owner, name, kind, schedule, timezone, action, retry, timeout_s, overlap, max_queued, "
    "catchup, catchup_window_s, max_runs, expires_at, status, pause_note, callback_url, "
    "metadata, idempotency_key, created_at, updated_at, next_fire_at, last_fire_at, run_count, "
    "claimed_by, claim_expires_at, end_reason, depends_on, trigger, condition, "
    "pause_after_failures, failure_streak, traceparent, tracestate, concurrency, rate_limit"
)
_RUN_COLUMNS = (
    "id, task_id, owner, trigger, scheduled_for, due_at, status, attempt, max_attempts, "
    "created_at, started_at, finished_at, duration_ms, output, error_message, claimed_by, "
    "lease_expires_at, cancel_requested, input, traceparent, tracestate"
)
_RUN_MARKS = ", ".join("?" * (_RUN_COLUMNS.count(",") + 2))  # the columns and `counts`
_EVENT_COLUMNS = "cursor, owner, type, task_id, run_id, created_at, payload"

# Task fields that a `TaskUpdate` may set, and how each is written.
_UPDATABLE: dict[str, Callable[[Any], Any]] = {
    "name": str,
    "schedule": encode,
    "timezone": str,
    "action": encode,
    "retry": retry_policy_to_json,
    "timeout_s": lambda v: v,
    "overlap": str,
    "max_queued": int,
    "catchup": str,
    "catchup_window_s": float,
    "max_runs": lambda v: v,
    "expires_at": lambda v: _us_or_none(v),
    "status": str,
    "pause_note": lambda v: v,
    "callback_url": lambda v: v,
    "metadata": encode,
    "next_fire_at": lambda v: _us_or_none(v),
    "last_fire_at": lambda v: _us_or_none(v),
    "end_reason": lambda v: v,
    "depends_on": lambda v: v,
    "trigger": lambda v: _json_or_none(v),
    "condition": lambda v: _json_or_none(v),
    "pause_after_failures": lambda v: v,
    "failure_streak": streak_text,
    "traceparent": lambda v: v,
    "tracestate": lambda v: v,
    "concurrency": lambda v: _json_or_none(v),
    "rate_limit": lambda v: _json_or_none(v),
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: Ids per `IN (...)` list, well under SQLite's limit on bound parameters.
_IN_CHUNK = 500


def _us(value: datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _us_or_none(value: datetime | None) -> int | None:
    return None if value is None else _us(value)


@lru_cache(maxsize=4096)
def _dt_req(value: int) -> datetime:
    # Cached: the rows of a batch share their instants (its `now`, a burst's due time).
    return _EPOCH + timedelta(microseconds=value)


def _dt(value: int | None) -> datetime | None:
    return None if value is None else _dt_req(value)


def _json_or_none(value: Any) -> str | None:
    return None if value is None else encode(value)


def _attempts(retry_json: str) -> int:
    return retry_policy_from_json(retry_json).attempts


def _task_from_row(row: Sequence[Any]) -> Task:
    return task_from_row(row, _dt, _dt_req)


def _run_from_row(row: Sequence[Any]) -> Run:
    return run_from_row(row, _dt, _dt_req)


def _task_to_row(task: Task) -> tuple[Any, ...]:
    return (
        task.id,
        task.owner,
        task.name,
        task.kind,
        encode(task.schedule),
        task.timezone,
        encode(task.action),
        retry_policy_to_json(task.retry),
        task.timeout_s,
        str(task.overlap),
        task.max_queued,
        str(task.catchup),
        task.catchup_window_s,
        task.max_runs,
        _us_or_none(task.expires_at),
        str(task.status),
        task.pause_note,
        task.callback_url,
        encode(task.metadata),
        task.idempotency_key,
        _us(task.created_at),
        _us(task.updated_at),
        _us_or_none(task.next_fire_at),
        _us_or_none(task.last_fire_at),
        task.run_count,
        task.claimed_by,
        _us_or_none(task.claim_expires_at),
        task.end_reason,
        task.depends_on,
        _json_or_none(task.trigger),
        _json_or_none(task.condition),
        task.pause_after_failures,
        streak_text(task.failure_streak),
        task.traceparent,
        task.tracestate,
        _json_or_none(task.concurrency),
        _json_or_none(task.rate_limit),
    )


def _delivery_from_row(row: Sequence[Any]) -> Delivery:
    return Delivery(
        id=row[0],
        owner=row[1],
        task_id=row[2],
        event_cursor=row[3],
        event_type=delivery_type(row[4]),
        url=row[5],
        body=row[6],
        status=DeliveryStatus(row[7]),
        attempts=row[8],
        next_attempt_at=_dt(row[9]),
        created_at=_dt_req(row[10]),
        last_status=row[11],
        last_error=row[12],
        delivered_at=_dt(row[13]),
        claimed_by=row[14],
        traceparent=row[15],
        tracestate=row[16],
    )


def _event_from_row(row: Sequence[Any]) -> Event:
    return Event(
        cursor=row[0],
        owner=row[1],
        type=EventType(row[2]),
        task_id=row[3],
        run_id=row[4],
        created_at=_dt_req(row[5]),
        payload=decode(row[6]),
    )


def _newest_first(
    columns: str, table: str, filters: Mapping[str, Any], before: str | None, limit: int
) -> tuple[str, list[Any]]:
    """A page query: rows whose columns equal every non-None filter, with id < `before`,
    newest (highest id) first."""
    where = [f"{column} = ?" for column, value in filters.items() if value is not None]
    args = [value for value in filters.values() if value is not None]
    if before is not None:
        where.append("id < ?")
        args.append(before)
    sql = f"SELECT {columns} FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + " ORDER BY id DESC LIMIT ?", [*args, limit]
