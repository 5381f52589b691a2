"""The SQLite store's runs: their rows, new runs (by hand, from trigger events), reads and
lists, cancellation requests, and what is due next."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from wakecall.errors import RunNotFound, StoreError
from wakecall.models import Attempt, AttemptStatus, Run, RunStatus, Task, Trigger
from wakecall.store.backfills import Backfill, Backfilled, claim_overlap
from wakecall.store.base import NewRun, Upcoming, new_run_record
from wakecall.store.plans import plan_backfill
from wakecall.store.sqlite.rows import (
    _RUN_COLUMNS,
    _RUN_MARKS,
    _dt,
    _dt_req,
    _json_or_none,
    _newest_first,
    _run_from_row,
    _task_from_row,
    _us,
    _us_or_none,
)
from wakecall.store.sqlite.tasks import TaskMethods


class RunMethods(TaskMethods):
    """The run methods of `SQLiteStore` other than claims, starts and finishes."""

    @staticmethod
    def _run_row(
        run: Run, now_us: int, counts: bool, lease: tuple[str, int] | None = None
    ) -> tuple[Any, ...]:
        """The row of a new run; with `lease` (node, until), the run starts its first attempt
        as it is written: at its due instant when that is ahead (`fire_and_start`'s
        horizon)."""
        started_us = None
        if lease:
            started_us = max(now_us, _us(run.due_at))
        elif run.started_at is not None:
            started_us = now_us
        return (
            run.id,
            run.task_id,
            run.owner,
            str(run.trigger),
            _us_or_none(run.scheduled_for),
            _us(run.due_at),
            "running" if lease else str(run.status),
            1 if lease else run.attempt,
            run.max_attempts,
            now_us,
            started_us,
            now_us if run.finished_at is not None else None,
            run.duration_ms,
            _json_or_none(run.output),
            run.error_message,
            lease[0] if lease else None,
            lease[1] if lease else None,
            0,
            _json_or_none(run.input),
            run.traceparent,
            run.tracestate,
            1 if counts else 0,
        )

    def _insert_run(
        self, conn: sqlite3.Connection, task: Task, new: NewRun, now: datetime
    ) -> Run | None:
        run = new_run_record(task.id, task.owner, task.retry.attempts, new, now)
        cursor = conn.execute(
            f"INSERT OR IGNORE INTO runs ({_RUN_COLUMNS}, counts) VALUES ({_RUN_MARKS})",
            self._run_row(run, _us(now), new.counts),
        )
        return run if cursor.rowcount == 1 else None

    async def create_run(self, owner: str | None, task_id: str, run: NewRun, now: datetime) -> Run:
        def create_run_on(conn: sqlite3.Connection) -> Run:
            task = _task_from_row(self._task_row(conn, owner, task_id))
            created = self._insert_run(conn, task, run, now)
            if created is None:
                raise StoreError(f"run {run.id} for {run.scheduled_for} exists already")
            return created

        return await self._tx(create_run_on)

    async def create_event_run(
        self, task_id: str, event_id: str, run: NewRun, now: datetime
    ) -> tuple[str, bool]:
        def create_event_run_on(conn: sqlite3.Connection) -> tuple[str, bool]:
            found = conn.execute(
                "SELECT run_id FROM trigger_events WHERE task_id = ? AND event_id = ?",
                (task_id, event_id),
            ).fetchone()
            if found is not None:
                return str(found[0]), False
            task = _task_from_row(self._task_row(conn, None, task_id))
            created = self._insert_run(conn, task, run, now)
            if created is None:
                raise StoreError(f"run {run.id} exists already")
            conn.execute(
                "INSERT INTO trigger_events (task_id, event_id, run_id, received_at) "
                "VALUES (?, ?, ?, ?)",
                (task_id, event_id, created.id, _us(now)),
            )
            return created.id, True

        return await self._tx(create_event_run_on)

    async def backfill_runs(self, owner: str, request: Backfill, now: datetime) -> Backfilled:
        slots = list(request.slots)

        def backfill_on(conn: sqlite3.Connection) -> Backfilled:
            task = _task_from_row(self._task_row(conn, owner, request.task_id))
            if not slots:
                return Backfilled()
            existing = {
                _dt_req(r[0])
                for r in conn.execute(
                    "SELECT scheduled_for FROM runs WHERE task_id = ? AND trigger = 'backfill' "
                    "AND scheduled_for >= ? AND scheduled_for <= ?",
                    (task.id, _us(slots[0]), _us(slots[-1])),
                )
            }
            busy = (
                conn.execute(
                    "SELECT 1 FROM runs WHERE task_id = ? AND status IN ('queued', 'running') "
                    "LIMIT 1",
                    (task.id,),
                ).fetchone()
                is not None
            )
            new = plan_backfill(
                slots, existing, busy=busy, overlap=request.overlap, now=now, trace=request.trace
            )
            runs = [new_run_record(task.id, task.owner, task.retry.attempts, n, now) for n in new]
            if not request.dry_run and runs:
                conn.executemany(
                    f"INSERT INTO runs ({_RUN_COLUMNS}, counts, overlap) VALUES ({_RUN_MARKS}, ?)",
                    [
                        (*self._run_row(run, _us(now), False), claim_overlap(request.overlap))
                        for run in runs
                    ],
                )
            return Backfilled(runs, sorted(s for s in slots if s in existing))

        return await self._tx(backfill_on)

    async def event_run_id(self, task_id: str, event_id: str) -> str | None:
        row = await self._read(
            lambda c: c.execute(
                "SELECT run_id FROM trigger_events WHERE task_id = ? AND event_id = ?",
                (task_id, event_id),
            ).fetchone()
        )
        return None if row is None else str(row[0])

    async def count_runs_since(self, task_id: str, trigger: Trigger, since: datetime) -> int:
        count = await self._read(
            lambda c: c.execute(
                "SELECT count(*) FROM runs WHERE task_id = ? AND trigger = ? AND created_at >= ?",
                (task_id, str(trigger), _us(since)),
            ).fetchone()[0]
        )
        return int(count)

    async def backlog(self, now: datetime) -> tuple[int, int]:
        now_us = _us(now)
        row = await self._read(
            lambda c: c.execute(
                "SELECT (SELECT count(*) FROM tasks WHERE status = 'active' "
                "AND next_fire_at IS NOT NULL AND next_fire_at <= ?), "
                "(SELECT count(*) FROM runs WHERE status = 'queued' AND due_at <= ?)",
                (now_us, now_us),
            ).fetchone()
        )
        return int(row[0]), int(row[1])

    async def upcoming(self) -> Upcoming:
        row = await self._read(
            lambda c: c.execute(
                "SELECT (SELECT min(next_fire_at) FROM tasks "
                "WHERE status = 'active' AND next_fire_at IS NOT NULL), "
                "(SELECT min(due_at) FROM runs WHERE status = 'queued'), "
                "(SELECT min(lease_expires_at) FROM runs WHERE status = 'running')"
            ).fetchone()
        )
        return Upcoming(_dt(row[0]), _dt(row[1]), _dt(row[2]), self._flow.opens_at())

    async def flow_usage(
        self, owner: str, concurrency_key: str | None, rate_key: str | None, since: datetime
    ) -> tuple[int, list[datetime]]:
        def flow_usage_on(conn: sqlite3.Connection) -> tuple[int, list[datetime]]:
            running = 0
            if concurrency_key is not None:
                running = conn.execute(
                    "SELECT count(*) FROM runs r JOIN tasks t ON t.id = r.task_id "
                    "WHERE r.status = 'running' AND t.owner = ? "
                    "AND json_extract(t.concurrency, '$.key') = ?",
                    (owner, concurrency_key),
                ).fetchone()[0]
            starts: list[datetime] = []
            if rate_key is not None:
                starts = [
                    _dt_req(r[0])
                    for r in conn.execute(
                        "SELECT started_at FROM flow_starts WHERE owner = ? AND key = ? "
                        "AND started_at > ? ORDER BY started_at",
                        (owner, rate_key, _us(since)),
                    )
                ]
            return running, starts

        return await self._read(flow_usage_on)

    async def request_cancel(self, owner: str | None, run_ids: Sequence[str]) -> None:
        if not run_ids:
            return
        marks = ", ".join("?" * len(run_ids))
        sql = (
            f"UPDATE runs SET cancel_requested = 1 WHERE id IN ({marks}) "
            "AND status IN ('queued', 'running')"
        )
        args: list[Any] = list(run_ids)
        if owner is not None:
            sql += " AND owner = ?"
            args.append(owner)

        def request_cancel_on(conn: sqlite3.Connection) -> None:
            conn.execute(sql, args)

        await self._tx(request_cancel_on)

    async def get_run(self, owner: str | None, run_id: str) -> Run:
        def get_run_on(conn: sqlite3.Connection) -> Run:
            row = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            if row is None or (owner is not None and row[2] != owner):
                raise RunNotFound(run_id)
            return _run_from_row(row)

        return await self._read(get_run_on)

    async def list_runs(
        self,
        owner: str | None,
        *,
        task_id: str | None = None,
        status: RunStatus | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> list[Run]:
        filters = {"owner": owner, "task_id": task_id, "status": status and str(status)}
        sql, args = _newest_first(_RUN_COLUMNS, "runs", filters, before, limit)

        def list_runs_on(conn: sqlite3.Connection) -> list[Run]:
            if task_id is not None:
                self._task_row(conn, owner, task_id)
            return [_run_from_row(r) for r in conn.execute(sql, args).fetchall()]

        return await self._read(list_runs_on)

    async def list_attempts(self, owner: str | None, run_id: str) -> list[Attempt]:
        def list_attempts_on(conn: sqlite3.Connection) -> list[Attempt]:
            row = conn.execute("SELECT owner FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None or (owner is not None and row[0] != owner):
                raise RunNotFound(run_id)
            return [
                Attempt(
                    run_id=r[0],
                    number=r[1],
                    status=AttemptStatus(r[2]),
                    started_at=_dt_req(r[3]),
                    finished_at=_dt(r[4]),
                    error_message=r[5],
                    node=r[6],
                )
                for r in conn.execute(
                    "SELECT run_id, number, status, started_at, finished_at, error_message, node "
                    "FROM attempts WHERE run_id = ? ORDER BY number",
                    (run_id,),
                )
            ]

        return await self._read(list_attempts_on)
