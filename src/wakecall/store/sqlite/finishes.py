"""The SQLite store's finishing of runs: the outcomes of attempts written as `plans` plans
them (the runs, their attempts and events, the announcement of an ended task), and the runs
queued for the tasks that depend on a success."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from functools import partial

from wakecall.models import Event, Run, RunStatus, Task
from wakecall.store.base import RunOutcome
from wakecall.store.plans import (
    StreakChange,
    dependency_runs,
    plan_finishes,
    succeeded_task_ids,
)
from wakecall.store.rows import streak_text
from wakecall.store.sqlite.connection import _DRAFTS
from wakecall.store.sqlite.rows import (
    _RUN_COLUMNS,
    _TASK_COLUMNS,
    _json_or_none,
    _run_from_row,
    _task_from_row,
    _us,
)
from wakecall.store.sqlite.runs import RunMethods


class RunFinishes(RunMethods):
    """The run finishing of `SQLiteStore`."""

    async def finish_runs(
        self, node: str, outcomes: Sequence[RunOutcome]
    ) -> tuple[list[Run], list[Event]]:
        """In batches that each end within the budget (see `budget`), one transaction each."""
        written: list[Run] = []
        events: list[Event] = []
        for chunk in self._finish_budget.chunks(outcomes):
            runs, appended = await self._tx(
                partial(self._finish_on, node=node, outcomes=chunk), background=True
            )
            written += runs
            events += appended
        return written, events

    def _finish_on(
        self, conn: sqlite3.Connection, *, node: str, outcomes: Sequence[RunOutcome]
    ) -> tuple[list[Run], list[Event]]:
        began = time.perf_counter()
        wanted = list(dict.fromkeys(o.run_id for o in outcomes))
        held = {
            r[0]: _run_from_row(r)
            for r in self._rows_by_id(conn, f"SELECT {_RUN_COLUMNS} FROM runs", wanted)
            if r[15] == node and r[6] in ("queued", "running")
        }
        task_ids = list(dict.fromkeys(run.task_id for run in held.values()))
        tasks = {
            r[0]: _task_from_row(r)
            for r in self._rows_by_id(conn, f"SELECT {_TASK_COLUMNS} FROM tasks", task_ids)
        }
        plan = plan_finishes(held, tasks, outcomes, _DRAFTS)
        attempt_rows = []
        retry_rows = []
        final_rows = []
        for run, outcome in plan.handled:
            fin_us = _us(outcome.finished_at)
            error = outcome.error_message
            # The attempt that ended is the run's attempt as held (a retry keeps its number).
            attempt_rows.append((str(outcome.attempt_status), fin_us, error, run.id, run.attempt))
            output = _json_or_none(outcome.output)
            if run.status == RunStatus.QUEUED:
                retry_rows.append((_us(run.due_at), error, output, run.id))
            else:
                final_rows.append((str(run.status), fin_us, run.duration_ms, output, error, run.id))
        conn.executemany(
            "UPDATE attempts SET status = ?, finished_at = ?, error_message = ? "
            "WHERE run_id = ? AND number = ?",
            attempt_rows,
        )
        conn.executemany(
            "UPDATE runs SET status = 'queued', due_at = ?, claimed_by = NULL, "
            "lease_expires_at = NULL, error_message = ?, output = ? WHERE id = ?",
            retry_rows,
        )
        conn.executemany(
            "UPDATE runs SET status = ?, finished_at = ?, duration_ms = ?, output = ?, "
            "error_message = ?, claimed_by = NULL, lease_expires_at = NULL WHERE id = ?",
            final_rows,
        )
        if plan.streaks:
            self._write_streaks(conn, plan.streaks)
        written = plan.written
        events = self._append_with_ends(conn, plan.events)
        self._queue_dependents(conn, tasks, written)
        self._finish_budget.note(len(outcomes), time.perf_counter() - began)
        return written, events

    @staticmethod
    def _write_streaks(conn: sqlite3.Connection, streaks: Mapping[str, StreakChange]) -> None:
        """The failure streaks the finished runs changed, and the pauses they caused."""
        conn.executemany(
            "UPDATE tasks SET failure_streak = ? WHERE id = ?",
            [
                (streak_text(c.failure_streak), task_id)
                for task_id, c in streaks.items()
                if c.paused_at is None
            ],
        )
        conn.executemany(
            "UPDATE tasks SET failure_streak = ?, status = 'paused', pause_note = ?, "
            "next_fire_at = NULL, updated_at = ? WHERE id = ?",
            [
                (streak_text(c.failure_streak), c.pause_note, _us(c.paused_at), task_id)
                for task_id, c in streaks.items()
                if c.paused_at is not None
            ],
        )

    def _queue_dependents(
        self, conn: sqlite3.Connection, tasks: Mapping[str, Task], written: Sequence[Run]
    ) -> None:
        """A run, with the upstream run as input, for each active task that depends on the
        task of a run that just succeeded (see `plans.dependency_runs`)."""
        upstream_ids = succeeded_task_ids(tasks, written)
        if not upstream_ids:
            return
        dependents: dict[str, list[Task]] = {}
        select = f"SELECT {_TASK_COLUMNS} FROM tasks"
        for row in self._rows_by_id(conn, select, upstream_ids, column="depends_on"):
            task = _task_from_row(row)
            assert task.depends_on is not None
            dependents.setdefault(task.depends_on, []).append(task)
        for task, new, at in dependency_runs(tasks, dependents, written):
            self._insert_run(conn, task, new, at)
