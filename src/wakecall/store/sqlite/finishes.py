"""The SQLite store's finishing of runs: the outcomes of attempts, their events, the
announcement of an ended task, and the runs queued for the tasks that depend on a success."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from datetime import datetime

from wakecall.models import (
    Event,
    Run,
    RunStatus,
    Task,
    TaskStatus,
    event_type_for,
    run_event_payload,
)
from wakecall.store.base import NewEvent, RunOutcome, dependency_run
from wakecall.store.rows import ATTEMPT_STATUS_TO_RUN
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
            runs, appended = await self._finish_batch(node, chunk)
            written += runs
            events += appended
        return written, events

    async def _finish_batch(
        self, node: str, outcomes: Sequence[RunOutcome]
    ) -> tuple[list[Run], list[Event]]:
        def finish_runs_on(conn: sqlite3.Connection) -> tuple[list[Run], list[Event]]:
            began = time.perf_counter()
            wanted = list(dict.fromkeys(o.run_id for o in outcomes))
            runs = {
                r[0]: r
                for r in self._rows_by_id(conn, f"SELECT {_RUN_COLUMNS} FROM runs", wanted)
                if r[15] == node and r[6] in ("queued", "running")
            }
            handled: list[tuple[Run, RunOutcome]] = []
            for outcome in outcomes:
                row = runs.pop(outcome.run_id, None)  # an outcome twice: the first one counts
                if row is not None:
                    handled.append((_run_from_row(row), outcome))
            task_ids = list(dict.fromkeys(run.task_id for run, _ in handled))
            tasks = {
                r[0]: _task_from_row(r)
                for r in self._rows_by_id(conn, f"SELECT {_TASK_COLUMNS} FROM tasks", task_ids)
            }
            written: list[Run] = []
            attempt_rows = []
            retry_rows = []
            final_rows = []
            for run, outcome in handled:
                fin_us = _us(outcome.finished_at)
                error = outcome.error_message
                attempt_rows.append(
                    (str(outcome.attempt_status), fin_us, error, run.id, run.attempt)
                )
                output = _json_or_none(outcome.output)
                if outcome.retry_at is not None:
                    retry_rows.append((_us(outcome.retry_at), error, output, run.id))
                    written.append(
                        run.replace(
                            status=RunStatus.QUEUED,
                            due_at=outcome.retry_at,
                            claimed_by=None,
                            lease_expires_at=None,
                            error_message=error,
                            output=outcome.output,
                        )
                    )
                    continue
                status = ATTEMPT_STATUS_TO_RUN[outcome.attempt_status]
                duration = outcome.duration_ms
                if duration is None and run.started_at is not None:
                    duration = int((outcome.finished_at - run.started_at).total_seconds() * 1000)
                final_rows.append((str(status), fin_us, duration, output, error, run.id))
                written.append(
                    run.replace(
                        status=status,
                        finished_at=outcome.finished_at,
                        duration_ms=duration,
                        output=outcome.output,
                        error_message=error,
                        claimed_by=None,
                        lease_expires_at=None,
                    )
                )
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
            # Events in outcome order; an ended task is announced after the batch's runs.
            events: list[Event] = []
            ending: dict[str, datetime] = {}
            for final in written:
                task = tasks.get(final.task_id)
                if final.status == RunStatus.QUEUED or task is None:
                    continue  # retried, or deleted while running: no one to tell
                assert final.finished_at is not None
                events.append(
                    self._append_event(
                        conn,
                        task.owner,
                        NewEvent(
                            event_type_for(task, final),
                            task.id,
                            final.id,
                            run_event_payload(task, final),
                        ),
                        _us(final.finished_at),
                        task.callback_url,
                    )
                )
                if task.status == TaskStatus.EXPIRED:
                    ending.pop(task.id, None)  # keep the order of each task's last run
                    ending[task.id] = final.finished_at
            for task_id, finished_at in ending.items():
                announced = self._announce_end_if_idle(conn, tasks[task_id], finished_at)
                if announced is not None:
                    events.append(announced)
            self._queue_dependents(conn, tasks, written)
            self._finish_budget.note(len(outcomes), time.perf_counter() - began)
            return written, events

        return await self._tx(finish_runs_on)

    def _queue_dependents(
        self, conn: sqlite3.Connection, tasks: Mapping[str, Task], written: Sequence[Run]
    ) -> None:
        """A run, with the upstream run as input, for each active task that depends on the
        task of a run that just succeeded."""
        succeeded = [r for r in written if r.status == RunStatus.SUCCESS and r.task_id in tasks]
        if not succeeded:
            return
        upstream_ids = list(dict.fromkeys(r.task_id for r in succeeded))
        dependents: dict[str, list[Task]] = {}
        select = f"SELECT {_TASK_COLUMNS} FROM tasks"
        for row in self._rows_by_id(conn, select, upstream_ids, column="depends_on"):
            task = _task_from_row(row)
            if task.status == TaskStatus.ACTIVE:
                assert task.depends_on is not None
                dependents.setdefault(task.depends_on, []).append(task)
        for run in succeeded:
            upstream = tasks[run.task_id]
            for task in dependents.get(run.task_id, ()):
                if task.owner != upstream.owner:
                    continue
                assert run.finished_at is not None
                self._insert_run(conn, task, dependency_run(upstream, run), run.finished_at)
