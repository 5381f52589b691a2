"""When failed runs pause their task (`pause_after_failures`).

A run counts as failed when it ends, its retries spent, as `failure` or `timeout` (a run
interrupted on its last attempt ends as a failure); a success ends the streak; skipped, missed
and cancelled runs neither count nor end it. A task keeps the ids of its streak (at most
`pause_after_failures` of them) only while `pause_after_failures` is set, so that the end of a
run is judged from the task as read, with no other query. Resuming the task, or setting or
clearing `pause_after_failures`, starts the count afresh.

When the streak reaches `pause_after_failures` on an active task, the task is paused with a
note naming the runs and a `task.paused` event (reason `failures`). A task already paused
stays so, without a second event; a task that has ended is not paused.
"""

from __future__ import annotations

from typing import Any

from wakecall.models.payloads import task_event_payload
from wakecall.models.records import Run, Task
from wakecall.models.statuses import RunStatus, TaskStatus

__all__ = [
    "FAILED_RUN_STATUSES",
    "PAUSED_BY_FAILURES",
    "failures_pause_note",
    "failures_paused_payload",
    "pauses_for_failures",
    "streak_after",
]

#: The final run statuses that count toward `pause_after_failures`.
FAILED_RUN_STATUSES = frozenset({RunStatus.FAILURE, RunStatus.TIMEOUT})
#: The `reason` of the `task.paused` event of a pause after failures.
PAUSED_BY_FAILURES = "failures"
#: The longest part of the last run's error the note quotes.
_ERROR_IN_NOTE = 200


def streak_after(task: Task, run: Run) -> tuple[str, ...] | None:
    """The task's failure streak once `run`, a run of it, has ended; None when the run leaves
    it as it was."""
    limit = task.pause_after_failures
    if limit is None:
        return None
    if run.status in FAILED_RUN_STATUSES:
        return (*task.failure_streak, run.id)[-limit:]
    if run.status == RunStatus.SUCCESS and task.failure_streak:
        return ()
    return None


def pauses_for_failures(task: Task, streak: tuple[str, ...]) -> bool:
    """Whether `streak` pauses `task` now: it is active and the streak reached its limit."""
    limit = task.pause_after_failures
    return task.status == TaskStatus.ACTIVE and limit is not None and len(streak) >= limit


def failures_pause_note(streak: tuple[str, ...], last: Run) -> str:
    """The pause note: the failed runs by id, what the last one said, how to go on."""
    count = len(streak)
    runs = "run" if count == 1 else "runs in a row"
    note = f"paused after {count} failed {runs}: {', '.join(streak)}"
    if last.error_message:
        said = " ".join(last.error_message.split())
        if len(said) > _ERROR_IN_NOTE:
            said = said[: _ERROR_IN_NOTE - 1] + "…"
        note += f"; the last said: {said}"
    return note + ". Fix the cause (list_runs shows each error), then resume the task."


def failures_paused_payload(task: Task, streak: tuple[str, ...], note: str) -> dict[str, Any]:
    """The payload of the `task.paused` event of a pause after failures: the task's event
    payload with the note and the failed runs' ids (`failedRuns`, oldest first)."""
    return {
        **task_event_payload(task, PAUSED_BY_FAILURES),
        "note": note,
        "failedRuns": list(streak),
    }
