"""The SQLite store's fires: due tasks claimed, their fires recorded (new runs, events, the
tasks moved on), and the one-transaction pass that fires and starts runs."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from wakecall.models import (
    Event,
    EventType,
    Run,
    RunStatus,
    Task,
    TaskStatus,
    event_type_for,
    run_event_payload,
)
from wakecall.store.base import (
    DueTask,
    FirePlan,
    FireResult,
    NewEvent,
    PassResult,
    Planner,
    new_run_record,
)
from wakecall.store.sqlite.finishes import RunFinishes
from wakecall.store.sqlite.rows import (
    _RUN_COLUMNS,
    _RUN_MARKS,
    _TASK_COLUMNS,
    _attempts,
    _dt,
    _dt_req,
    _run_from_row,
    _task_from_row,
    _us,
    _us_or_none,
)
from wakecall.store.sqlite.run_leases import RunLeases


@dataclass(frozen=True, slots=True)
class Births:
    """What `fire_and_start` tells `_record_on`: the due tasks' rows as it read them in this
    transaction (`task_rows`) and as decoded (`tasks`), and the new runs to write already
    running (`run_ids`), leased to the node until `until_us`."""

    run_ids: set[str]
    until_us: int
    task_rows: Mapping[str, tuple[Any, ...]]
    tasks: Mapping[str, Task]


def _task_after_fire(task: Task, update: tuple[Any, ...]) -> Task:
    """`task` after `_record_on`'s UPDATE with `update` (next fire, last fire, runs counted,
    status, end reason, updated at, id), its instants as the store reads them back."""
    next_fire, last_fire, counted, status, end_reason, updated, _ = update
    return task.replace(
        status=TaskStatus(status),
        updated_at=_dt_req(updated),
        next_fire_at=_dt(next_fire),
        last_fire_at=_dt(last_fire),
        run_count=task.run_count + counted,
        claimed_by=None,
        claim_expires_at=None,
        end_reason=end_reason,
    )


class FireMethods(RunLeases, RunFinishes):
    """The fire methods of `SQLiteStore`."""

    async def claim_due_tasks(
        self, node: str, now: datetime, limit: int, lease: timedelta
    ) -> list[DueTask]:
        now_us, until_us = _us(now), _us(now + lease)
        return await self._tx(
            lambda conn: self._claim_due_on(conn, node, now_us, until_us, limit, mark=True)
        )

    @staticmethod
    def _claim_due_on(
        conn: sqlite3.Connection,
        node: str,
        now_us: int,
        until_us: int,
        limit: int,
        *,
        mark: bool,
        rows_out: dict[str, tuple[Any, ...]] | None = None,
    ) -> list[DueTask]:
        """Due tasks unclaimed (or whose claim expired), earliest first, as claimed by `node`;
        with `mark`, the claims are written (for a caller that plans outside the
        transaction). `rows_out` receives each task's row as read."""
        rows = conn.execute(
            f"SELECT {_TASK_COLUMNS} FROM tasks "
            "WHERE status = 'active' AND next_fire_at IS NOT NULL AND next_fire_at <= ? "
            "AND (claimed_by IS NULL OR claim_expires_at < ?) "
            "ORDER BY next_fire_at LIMIT ?",
            (now_us, now_us, limit),
        ).fetchall()
        if not rows:
            return []
        ids = [r[0] for r in rows]
        marks = ", ".join("?" * len(ids))
        if mark:
            conn.execute(
                f"UPDATE tasks SET claimed_by = ?, claim_expires_at = ? WHERE id IN ({marks})",
                (node, until_us, *ids),
            )
        queued: dict[str, int] = {}
        running: dict[str, list[str]] = {}
        for task_id, run_id, status in conn.execute(
            f"SELECT task_id, id, status FROM runs WHERE task_id IN ({marks}) "
            "AND status IN ('queued', 'running')",
            ids,
        ):
            if status == "queued":
                queued[task_id] = queued.get(task_id, 0) + 1
            else:
                running.setdefault(task_id, []).append(run_id)
        if rows_out is not None:
            rows_out.update((r[0], r) for r in rows)
        out = []
        for row in rows:
            task = _task_from_row((*row[:25], node, until_us, *row[27:]))  # as claimed
            out.append(DueTask(task, queued.get(task.id, 0), tuple(running.get(task.id, ()))))
        return out

    async def fire_and_start(
        self,
        node: str,
        now: datetime,
        *,
        limit: int,
        lease: timedelta,
        plan: Planner,
        start_limit: int,
    ) -> PassResult:
        """One transaction: SQLite has one writer at a time, so the tasks read here cannot be
        taken by anyone before the fires are recorded, and need no claim marks.

        The runs to start are chosen before the new runs are written, among the stored queued
        runs and the new ones alike (the same order and overlap rules as `start_due_runs`); a
        new run chosen is written running in its first attempt, and its record and its task's
        are built from the rows written, not read back."""
        now_us, until_us = _us(now), _us(now + lease)
        limit = self._fire_budget.limit(limit)

        def fire_and_start_on(conn: sqlite3.Connection) -> PassResult:
            began = time.perf_counter()
            task_rows: dict[str, tuple[Any, ...]] = {}
            due = (
                self._claim_due_on(
                    conn, node, now_us, until_us, limit, mark=False, rows_out=task_rows
                )
                if limit > 0
                else []
            )
            plans = [p for p in map(plan, due) if p is not None]
            chosen: list[str] = []
            born_running: set[str] = set()
            if start_limit > 0:
                overlap = {d.task.id: str(d.task.overlap) for d in due}
                born = [
                    (_us(new.due_at), new.id, made.task_id, overlap[made.task_id])
                    for made in plans
                    if made.instant is None  # its runs due now end as they are written
                    for new in made.runs
                    if new.status == RunStatus.QUEUED and new.due_at <= now
                ]
                chosen = self._choose_runs(conn, now_us, start_limit, born)
                born_ids = {b[1] for b in born}
                born_running = {run_id for run_id in chosen if run_id in born_ids}
            if plans:
                fired, born_started = self._record_on(
                    conn,
                    node,
                    now,
                    plans,
                    claimed=False,
                    start=Births(
                        born_running, until_us, task_rows, {d.task.id: d.task for d in due}
                    ),
                )
            else:
                fired, born_started = FireResult([], [], []), {}
            stored = [run_id for run_id in chosen if run_id not in born_running]
            started_stored = {
                run.id: (run, task)
                for run, task in self._start_chosen_on(conn, node, now_us, until_us, stored)
            }
            started = [
                pair
                for run_id in chosen
                if (pair := born_started.get(run_id) or started_stored.get(run_id)) is not None
            ]
            self._fire_budget.note(len(due) + len(started), time.perf_counter() - began)
            return PassResult(fired, plans, len(due), started, more=len(due) == limit)

        return await self._tx(fire_and_start_on)

    async def record_fires(self, node: str, now: datetime, plans: Sequence[FirePlan]) -> FireResult:
        return await self._tx(lambda conn: self._record_on(conn, node, now, plans, claimed=True)[0])

    def _record_on(
        self,
        conn: sqlite3.Connection,
        node: str,
        now: datetime,
        plans: Sequence[FirePlan],
        *,
        claimed: bool,
        start: Births | None = None,
    ) -> tuple[FireResult, dict[str, tuple[Run, Task]]]:
        """`record_fires` inside the caller's transaction. With `claimed`, a plan counts only
        if `node`'s claim mark is still on its task; without, the caller read the tasks in
        this same transaction.

        With `start`, the tasks' rows are taken from it rather than read again, and the new
        runs it names are written running (attempt 1, leased to `node`) and returned by id
        with their task as it is after the fire.

        The new runs of an instant plan that are due now are written finished, with their
        attempt and event (see `FirePlan.instant`)."""
        now_us = _us(now)
        wanted = list(dict.fromkeys(p.task_id for p in plans))
        # The tasks as decoded before the fire, for the runs born running or ended (their
        # events carry the task): `start` has them all; otherwise those of instant plans.
        decoded: Mapping[str, Task]
        if start is not None:
            decoded = start.tasks
        else:
            instant_ids = list(dict.fromkeys(p.task_id for p in plans if p.instant is not None))
            decoded = {
                r[0]: _task_from_row(r)
                for r in self._rows_by_id(conn, f"SELECT {_TASK_COLUMNS} FROM tasks", instant_ids)
            }
        # The claim and what new runs need; a whole task is read only for the rare plan
        # that writes events (missed fires, wakeups, an end).
        rows: dict[str, Sequence[Any]]
        if start is not None:  # the tasks' whole rows were read in this transaction
            rows = {
                task_id: (r[0], r[25], r[1], r[7], r[15], r[27])
                for task_id in wanted
                if (r := start.task_rows.get(task_id)) is not None
            }
        else:
            rows = {
                r[0]: r
                for r in self._rows_by_id(
                    conn,
                    "SELECT id, claimed_by, owner, retry, status, end_reason FROM tasks",
                    wanted,
                )
            }
        lost: list[str] = []
        accepted: list[tuple[FirePlan, Sequence[Any]]] = []
        for plan in plans:
            row = rows.pop(plan.task_id, None)  # a second plan for a task finds it gone
            if row is None or (claimed and row[1] != node):
                lost.append(plan.task_id)
                continue
            accepted.append((plan, row))
        candidates = [
            (
                new_run_record(
                    row[0],
                    row[2],
                    _attempts(row[3]),
                    new,
                    now,
                    plan.instant_for(new, now),
                ),
                new.counts,
            )
            for plan, row in accepted
            for new in plan.runs
        ]
        running = start.run_ids if start is not None else set()
        lease = (node, start.until_us) if start is not None else None
        run_rows = [
            self._run_row(run, now_us, counts, lease if run.id in running else None)
            for run, counts in candidates
        ]
        cursor = conn.executemany(
            f"INSERT OR IGNORE INTO runs ({_RUN_COLUMNS}, counts) VALUES ({_RUN_MARKS})",
            run_rows,
        )
        # Run ids are new, so a candidate is absent only when its slot had a run already;
        # which ones, is looked up only when some are.
        ids = [run.id for run, _ in candidates]
        if cursor.rowcount == len(candidates):
            inserted = set(ids)
        else:
            inserted = {r[0] for r in self._rows_by_id(conn, "SELECT id FROM runs", ids)}
        created: list[Run] = []
        events: list[Event] = []
        task_rows = []
        cancel_rows = []
        started: dict[str, tuple[Run, Task]] = {}
        settled: list[Run] = []
        settled_tasks: dict[str, Task] = {}
        position = 0
        for plan, row in accepted:
            task_id, owner, status, end_reason = row[0], row[2], row[4], row[5]
            task: Task | None = None
            if plan.events or any(n.status == RunStatus.MISSED for n in plan.runs):
                task = _task_from_row(self._task_row(conn, None, task_id))
            counted = 0
            born_running: list[Run] = []
            born_settled: list[Run] = []
            for _ in plan.runs:
                run, counts = candidates[position]
                run_row = run_rows[position]
                position += 1
                if run.id not in inserted:
                    continue
                if counts:
                    counted += 1
                created.append(run)
                if run.id in running:
                    born_running.append(_run_from_row(run_row[:-1]))  # without `counts`
                elif run.status == RunStatus.SUCCESS:  # only an instant run is born so
                    born_settled.append(run)
                if run.status == RunStatus.MISSED:
                    assert task is not None
                    task_now = task.replace(run_count=task.run_count + counted)
                    events.append(
                        self._append_event(
                            conn,
                            task.owner,
                            NewEvent(
                                EventType.RUN_MISSED,
                                task.id,
                                run.id,
                                run_event_payload(task_now, run),
                            ),
                            now_us,
                            task.callback_url,
                        )
                    )
            task_row = (
                _us_or_none(plan.next_fire_at),
                _us_or_none(plan.last_fire_at),
                counted,
                str(plan.end.status) if plan.end else status,
                plan.end.reason if plan.end else end_reason,
                now_us,
                task_id,
            )
            task_rows.append(task_row)
            if born_running:
                fired_task = _task_after_fire(decoded[task_id], task_row)
                for run in born_running:
                    started[run.id] = (run, fired_task)
            if born_settled:
                # Their events show the task as the fire left it: only its count moved.
                upstream = decoded[task_id]
                run_count = upstream.run_count + counted
                for run in born_settled:
                    events.append(
                        self._append_event(
                            conn,
                            owner,
                            NewEvent(
                                event_type_for(upstream, run),
                                task_id,
                                run.id,
                                run_event_payload(upstream, run, run_count=run_count),
                            ),
                            now_us,
                            upstream.callback_url,
                        )
                    )
                settled += born_settled
                settled_tasks[task_id] = upstream
            cancel_rows += [(run_id,) for run_id in plan.cancel_run_ids]
            for new_event in plan.events:
                assert task is not None
                events.append(self._append_event(conn, owner, new_event, now_us, task.callback_url))
        conn.executemany(
            "UPDATE tasks SET next_fire_at = ?, last_fire_at = ?, "
            "run_count = run_count + ?, status = ?, end_reason = ?, "
            "claimed_by = NULL, claim_expires_at = NULL, updated_at = ? WHERE id = ?",
            task_rows,
        )
        conn.executemany(
            "UPDATE runs SET cancel_requested = 1 WHERE id = ? AND status IN ('queued', 'running')",
            cancel_rows,
        )
        if started:
            conn.executemany(
                "INSERT INTO attempts (run_id, number, status, started_at, node) "
                "VALUES (?, 1, 'running', ?, ?)",
                [(run_id, now_us, node) for run_id in started],
            )
        if settled:
            conn.executemany(
                "INSERT INTO attempts (run_id, number, status, started_at, finished_at, node) "
                "VALUES (?, 1, 'success', ?, ?, ?)",
                [(run.id, now_us, now_us, node) for run in settled],
            )
            self._queue_dependents(conn, settled_tasks, settled)
        for plan, row in accepted:
            if plan.end is not None and plan.end.status == TaskStatus.EXPIRED:
                ended = _task_from_row(self._task_row(conn, None, row[0]))
                announced = self._announce_end_if_idle(conn, ended, now)
                if announced is not None:
                    events.append(announced)
        return FireResult(created, events, lost, settled), started

    async def release_tasks(self, node: str, task_ids: Sequence[str]) -> None:
        if not task_ids:
            return
        marks = ", ".join("?" * len(task_ids))

        def release_tasks_on(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE tasks SET claimed_by = NULL, claim_expires_at = NULL "
                f"WHERE claimed_by = ? AND id IN ({marks})",
                (node, *task_ids),
            )

        await self._tx(release_tasks_on)
