"""Task and run rows decoded into records, for both stores.

Both stores select a task's columns and a run's columns in the same order (each store's
`_TASK_COLUMNS` and `_RUN_COLUMNS`); they differ only in how an instant is stored, so each passes
its own converter (`instant` for a nullable column, `instant_req` for one that is never null).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from wakecall.models import (
    AttemptStatus,
    CatchUp,
    Overlap,
    Run,
    RunStatus,
    Task,
    TaskStatus,
    Trigger,
    retry_policy_from_json,
    run_from_values,
    task_from_values,
)
from wakecall.store.json_text import decode

__all__ = ["ATTEMPT_STATUS_TO_RUN", "run_from_row", "streak_text", "task_from_row"]

#: A run's status after its attempt ended so, when it is not retried.
ATTEMPT_STATUS_TO_RUN = {
    AttemptStatus.SUCCESS: RunStatus.SUCCESS,
    AttemptStatus.FAILURE: RunStatus.FAILURE,
    AttemptStatus.INTERRUPTED: RunStatus.FAILURE,
    AttemptStatus.TIMEOUT: RunStatus.TIMEOUT,
    AttemptStatus.CANCELLED: RunStatus.CANCELLED,
    AttemptStatus.SKIPPED: RunStatus.SKIPPED,
}

_OVERLAPS = {m.value: m for m in Overlap}
_CATCHUPS = {m.value: m for m in CatchUp}
_TASK_STATUSES = {m.value: m for m in TaskStatus}
_RUN_STATUSES = {m.value: m for m in RunStatus}
_TRIGGERS = {m.value: m for m in Trigger}

Instant = Callable[[Any], Any]


def _load_json(value: str | None) -> Any:
    return None if value is None else decode(value)


def streak_text(streak: Sequence[str]) -> str | None:
    """A task's failure streak as its column holds it: a JSON array, or NULL when empty."""
    return json.dumps(list(streak)) if streak else None


def _streak(value: str | None) -> tuple[str, ...]:
    return () if value is None else tuple(json.loads(value))


def task_from_row(row: Sequence[Any], instant: Instant, instant_req: Instant) -> Task:
    """A task from a row whose first columns are the task columns, in their order."""
    return task_from_values(
        (
            row[0],  # id
            row[1],  # owner
            row[2],  # name
            row[3],  # kind
            decode(row[4]),  # schedule
            row[5],  # timezone
            decode(row[6]),  # action
            retry_policy_from_json(row[7]),
            row[8],  # timeout_s
            _OVERLAPS[row[9]],
            row[10],  # max_queued
            _CATCHUPS[row[11]],
            row[12],  # catchup_window_s
            row[13],  # max_runs
            instant(row[14]),  # expires_at
            _TASK_STATUSES[row[15]],
            row[16],  # pause_note
            row[17],  # callback_url
            decode(row[18]),  # metadata
            row[19],  # idempotency_key
            instant_req(row[20]),  # created_at
            instant_req(row[21]),  # updated_at
            instant(row[22]),  # next_fire_at
            instant(row[23]),  # last_fire_at
            row[24],  # run_count
            row[25],  # claimed_by
            instant(row[26]),  # claim_expires_at
            row[27],  # end_reason
            row[28],  # depends_on
            _load_json(row[29]),  # trigger
            _load_json(row[30]),  # condition
            row[31],  # pause_after_failures
            _streak(row[32]),  # failure_streak
            row[33],  # traceparent
            row[34],  # tracestate
            _load_json(row[35]),  # concurrency
            _load_json(row[36]),  # rate_limit
        )
    )


def run_from_row(row: Sequence[Any], instant: Instant, instant_req: Instant) -> Run:
    """A run from a row whose first columns are the run columns, in their order."""
    return run_from_values(
        (
            row[0],  # id
            row[1],  # task_id
            row[2],  # owner
            _TRIGGERS[row[3]],
            instant(row[4]),  # scheduled_for
            instant_req(row[5]),  # due_at
            _RUN_STATUSES[row[6]],
            row[7],  # attempt
            row[8],  # max_attempts
            instant_req(row[9]),  # created_at
            instant(row[10]),  # started_at
            instant(row[11]),  # finished_at
            row[12],  # duration_ms
            _load_json(row[13]),  # output
            row[14],  # error_message
            row[15],  # claimed_by
            instant(row[16]),  # lease_expires_at
            bool(row[17]),  # cancel_requested
            _load_json(row[18]),  # input
            row[19],  # traceparent
            row[20],  # tracestate
        )
    )
