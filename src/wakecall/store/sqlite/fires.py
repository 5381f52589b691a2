"""The SQLite store's fires: due tasks claimed, their fires recorded (new runs, events, the
tasks moved on), and the one-transaction pass that fires and starts runs."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from wakecall.models import Run, RunStatus, Task, TaskStatus
from wakecall.store.base import (
    DueTask,
    FirePlan,
    FireResult,
    PassResult,
    Planner,
)
from wakecall.store.plans import moved_task, plan_fire_runs, plan_fire_writes
from wakecall.store.sqlite.connection import _DRAFTS
from wakecall.store.sqlite.finishes import RunFinishes
from wakecall.store.sqlite.rows import (
    _RUN_COLUMNS,
    _RUN_MARKS,
    _TASK_COLUMNS,
    _json_or_none,
    _run_from_row,
    _task_from_row,
    _us,
    _us_or_none,
)
from wakecall.store.sqlite.run_leases import RunLeases

#: Where a run's row (`_run_row`, in `_RUN_COLUMNS` order) holds its `started_at`.
_STARTED_AT = _RUN_COLUMNS.split(", ").index("started_at")


@dataclass(frozen=True, slots=True)
class Births:
    """What `fire_and_start` tells `_record_on`: the due tasks as it read them in this
    transaction (`tasks`), and the new runs to write already running (`run_ids`), leased to
    the node until `until_us`."""

    run_ids: set[str]
    until_us: int
    tasks: Mapping[str, Task]


def _born_row(due_at: datetime, run_id: str, task: Task) -> tuple[Any, ...]:
    """A run about to be written queued, as `_choose_runs` reads stored ones."""
    return (
        _us(due_at),
        run_id,
        task.id,
        str(task.overlap),
        task.owner,
        _json_or_none(task.concurrency),
        _json_or_none(task.rate_limit),
    )


def _startable(due_at: datetime, now: datetime, reach: datetime, task: Task) -> bool:
    """Whether a new run may start in this pass: due by now, or by `reach` ahead of its
    instant when no flow control (whose windows are judged at `now`) applies."""
    if due_at <= now:
        return True
    return due_at <= reach and not task.flow_controlled


class FireMethods(RunLeases, RunFinishes):
    """The fire methods of `SQLiteStore`."""

    async def claim_due_tasks(
        self,
        node: str,
        now: datetime,
        limit: int,
        lease: timedelta,
        *,
        due_by: datetime | None = None,
    ) -> list[DueTask]:
        now_us, until_us = _us(now), _us(now + lease)
        due_by_us = None if due_by is None else _us(max(now, due_by))
        return await self._tx(
            lambda conn: self._claim_due_on(
                conn, node, now_us, until_us, limit, mark=True, due_by_us=due_by_us
            )
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
        due_by_us: int | None = None,
    ) -> list[DueTask]:
        """Tasks due by `due_by_us` (default: now) unclaimed (or whose claim expired by now),
        earliest first, as claimed by `node`; with `mark`, the claims are written (for a
        caller that plans outside the transaction)."""
        rows = conn.execute(
            f"SELECT {_TASK_COLUMNS} FROM tasks "
            "WHERE status = 'active' AND next_fire_at IS NOT NULL AND next_fire_at <= ? "
            "AND (claimed_by IS NULL OR claim_expires_at < ?) "
            "ORDER BY next_fire_at LIMIT ?",
            (now_us if due_by_us is None else due_by_us, now_us, limit),
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
        horizon: datetime | None = None,
    ) -> PassResult:
        """One transaction: SQLite has one writer at a time, so the tasks read here cannot be
        taken by anyone before the fires are recorded, and need no claim marks.

        The runs to start are chosen before the new runs are written, among the stored queued
        runs and the new ones alike (the same order and overlap rules as `start_due_runs`); a
        new run chosen is written running in its first attempt, and its record and its task's
        are built from the rows written, not read back. A new run due after `now` (by
        `horizon`) is among them unless its task has a flow control, and is written started
        at its due instant."""
        now_us, until_us = _us(now), _us(now + lease)
        reach = now if horizon is None else max(now, horizon)
        limit = self._fire_budget.limit(limit)

        def fire_and_start_on(conn: sqlite3.Connection) -> PassResult:
            began = time.perf_counter()
            due = (
                self._claim_due_on(
                    conn, node, now_us, until_us, limit, mark=False, due_by_us=_us(reach)
                )
                if limit > 0
                else []
            )
            plans = [p for p in map(plan, due) if p is not None]
            chosen: list[str] = []
            born_running: set[str] = set()
            if start_limit > 0:
                tasks = {d.task.id: d.task for d in due}
                born = [
                    _born_row(new.due_at, new.id, tasks[made.task_id])
                    for made in plans
                    if made.instant is None  # its runs due now end as they are written
                    for new in made.runs
                    if new.status == RunStatus.QUEUED
                    and _startable(new.due_at, now, reach, tasks[made.task_id])
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
                    start=Births(born_running, until_us, {d.task.id: d.task for d in due}),
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

        return await self._tx(fire_and_start_on, background=True)

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
        """`record_fires` inside the caller's transaction, written as `plans` plans it. With
        `claimed`, a plan counts only if `node`'s claim mark is still on its task; without,
        the caller read the tasks in this same transaction.

        With `start`, the tasks are taken from it rather than read again, and the new runs it
        names are written running (attempt 1, leased to `node`) and returned by id with their
        task as it is after the fire."""
        now_us = _us(now)
        wanted = list(dict.fromkeys(p.task_id for p in plans))
        tasks: Mapping[str, Task]
        if start is not None:  # read and decoded in this transaction, as claimed
            tasks = start.tasks
        else:
            tasks = {
                r[0]: _task_from_row(r)
                for r in self._rows_by_id(conn, f"SELECT {_TASK_COLUMNS} FROM tasks", wanted)
            }
        lost: list[str] = []
        accepted: list[tuple[FirePlan, Task]] = []
        seen: set[str] = set()
        stopped: list[str] = []
        for plan in plans:
            task = tasks.get(plan.task_id)
            # A second plan for one task finds the claim already released by the first.
            if task is None or (claimed and task.claimed_by != node) or plan.task_id in seen:
                lost.append(plan.task_id)
                continue
            if task.status != TaskStatus.ACTIVE:  # paused (or ended) since it was claimed
                lost.append(plan.task_id)
                stopped.append(plan.task_id)
                continue
            seen.add(plan.task_id)
            accepted.append((plan, task))
        if stopped:
            _release_on(conn, node, stopped)
        candidates = plan_fire_runs(accepted, now)
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
        writes = plan_fire_writes(accepted, candidates, inserted, now, _DRAFTS)
        conn.executemany(
            "UPDATE tasks SET next_fire_at = ?, last_fire_at = ?, "
            "run_count = run_count + ?, status = ?, end_reason = ?, "
            "claimed_by = NULL, claim_expires_at = NULL, updated_at = ? WHERE id = ?",
            [
                (
                    _us_or_none(m.next_fire_at),
                    _us_or_none(m.last_fire_at),
                    m.counted,
                    str(m.status),
                    m.end_reason,
                    now_us,
                    m.task_id,
                )
                for m in writes.moves
            ],
        )
        conn.executemany(
            "UPDATE runs SET cancel_requested = 1 WHERE id = ? AND status IN ('queued', 'running')",
            [(run_id,) for run_id in writes.cancel_run_ids],
        )
        started: dict[str, tuple[Run, Task]] = {}
        if running:
            moves = {m.task_id: m for m in writes.moves}
            attempts = []
            for (run, _), row in zip(candidates, run_rows, strict=True):
                if run.id in running and run.id in inserted:
                    task = moved_task(tasks[run.task_id], moves[run.task_id], now)
                    started[run.id] = (_run_from_row(row[:-1]), task)  # without `counts`
                    attempts.append((run.id, row[_STARTED_AT], node))
            conn.executemany(
                "INSERT INTO attempts (run_id, number, status, started_at, node) "
                "VALUES (?, 1, 'running', ?, ?)",
                attempts,
            )
        if writes.settled:
            conn.executemany(
                "INSERT INTO attempts (run_id, number, status, started_at, finished_at, node) "
                "VALUES (?, 1, 'success', ?, ?, ?)",
                [(run.id, now_us, now_us, node) for run in writes.settled],
            )
        events = self._append_with_ends(conn, writes.events)
        if writes.settled:
            self._queue_dependents(conn, writes.settled_tasks, writes.settled)
        return FireResult(writes.created, events, lost, writes.settled), started

    async def release_tasks(self, node: str, task_ids: Sequence[str]) -> None:
        if not task_ids:
            return
        await self._tx(lambda conn: _release_on(conn, node, task_ids))


def _release_on(conn: sqlite3.Connection, node: str, task_ids: Sequence[str]) -> None:
    """Give back `node`'s claims on these tasks."""
    marks = ", ".join("?" * len(task_ids))
    conn.execute(
        "UPDATE tasks SET claimed_by = NULL, claim_expires_at = NULL "
        f"WHERE claimed_by = ? AND id IN ({marks})",
        (node, *task_ids),
    )
