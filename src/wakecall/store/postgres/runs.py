"""The PostgreSQL store's runs: new runs (by hand, from trigger events), reads and lists,
cancellation requests, and what is due next."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from wakecall.errors import RunNotFound, StoreError, TaskNotFound
from wakecall.models import Attempt, AttemptStatus, Run, RunStatus, Task, Trigger
from wakecall.store.backfills import Backfill, Backfilled, claim_overlap
from wakecall.store.base import NewRun, Upcoming, new_run_record
from wakecall.store.plans import plan_backfill
from wakecall.store.postgres.rows import _dumps_or_none, _no_nul, _run_from_row, _task_from_row
from wakecall.store.postgres.sql import _RUN_COLUMNS, _UNFINISHED, _newest_first
from wakecall.store.postgres.tasks import TaskMethods
from wakecall.tracecontext import trace_columns


class RunMethods(TaskMethods):
    """The run methods of `PostgresStore` other than claims, starts and finishes."""

    async def create_run(self, owner: str | None, task_id: str, run: NewRun, now: datetime) -> Run:
        async def create_run_on(conn: asyncpg.Connection) -> Run:
            # FOR SHARE: the task cannot be deleted under the new run.
            task = _task_from_row(await self._task_row(conn, owner, task_id, "FOR SHARE"))
            created = await self._insert_run(conn, task, run, now)
            await self._hint(conn, due=True)
            return created

        return await self._tx(create_run_on)

    async def create_event_run(
        self, task_id: str, event_id: str, run: NewRun, now: datetime
    ) -> tuple[str, bool]:
        seen = "SELECT run_id FROM trigger_events WHERE task_id = $1 AND event_id = $2"

        async def create_event_run_on(conn: asyncpg.Connection) -> tuple[str, bool]:
            found = await conn.fetchval(seen, task_id, event_id)
            if found is not None:
                return str(found), False
            task = _task_from_row(await self._task_row(conn, None, task_id, "FOR SHARE"))
            # A concurrent delivery of the same event waits here for the first to commit.
            claimed = await conn.fetchval(
                "INSERT INTO trigger_events (task_id, event_id, run_id, received_at) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING run_id",
                task_id,
                event_id,
                run.id,
                now,
            )
            if claimed is None:
                return str(await conn.fetchval(seen, task_id, event_id)), False
            await self._insert_run(conn, task, run, now)
            await self._hint(conn, due=True)
            return run.id, True

        return await self._tx(create_event_run_on)

    async def backfill_runs(self, owner: str, request: Backfill, now: datetime) -> Backfilled:
        slots = list(request.slots)

        async def backfill_on(conn: asyncpg.Connection) -> Backfilled:
            # FOR UPDATE: backfills of one task take turns, so each sees the slots the one
            # before wrote (the unique index of backfill runs would keep them apart anyway).
            task = _task_from_row(await self._task_row(conn, owner, request.task_id, "FOR UPDATE"))
            if not slots:
                return Backfilled()
            existing = {
                r[0]
                for r in await conn.fetch(
                    "SELECT scheduled_for FROM runs WHERE task_id = $1 AND trigger = 'backfill' "
                    "AND scheduled_for >= $2 AND scheduled_for <= $3",
                    task.id,
                    slots[0],
                    slots[-1],
                )
            }
            busy = await conn.fetchval(
                f"SELECT EXISTS (SELECT FROM runs WHERE task_id = $1 AND {_UNFINISHED})", task.id
            )
            new = plan_backfill(
                slots, existing, busy=busy, overlap=request.overlap, now=now, trace=request.trace
            )
            runs = [new_run_record(task.id, task.owner, task.retry.attempts, n, now) for n in new]
            if not request.dry_run and runs:
                written = set(await self._insert_backfill(conn, task, runs, request, now))
                runs = [run for run in runs if run.id in written]
                await self._hint(conn, due=True)
            return Backfilled(runs, sorted(s for s in slots if s in existing))

        return await self._tx(backfill_on)

    @staticmethod
    async def _insert_backfill(
        conn: asyncpg.Connection, task: Task, runs: list[Run], request: Backfill, now: datetime
    ) -> list[str]:
        """Insert backfill runs in one statement; the ids of those written (a slot another
        backfill wrote first is left out)."""
        rows = await conn.fetch(
            "INSERT INTO runs (id, task_id, owner, trigger, scheduled_for, due_at, status, "
            "attempt, max_attempts, created_at, finished_at, error_message, counts, overlap, "
            "traceparent, tracestate) "
            "SELECT u.id, $1, $2, 'backfill', u.slot, $3, u.status, 0, $4, $3, u.finished_at, "
            "u.error, false, $5, $11, $12 FROM unnest($6::text[], $7::timestamptz[], $8::text[], "
            "$9::timestamptz[], $10::text[]) AS u(id, slot, status, finished_at, error) "
            "ON CONFLICT DO NOTHING RETURNING id",
            task.id,
            task.owner,
            now,
            task.retry.attempts,
            claim_overlap(request.overlap),
            [r.id for r in runs],
            [r.scheduled_for for r in runs],
            [str(r.status) for r in runs],
            [r.finished_at for r in runs],
            [r.error_message for r in runs],
            *trace_columns(request.trace),
        )
        return [r[0] for r in rows]

    async def event_run_id(self, task_id: str, event_id: str) -> str | None:
        found = await self._call(
            lambda c: c.fetchval(
                "SELECT run_id FROM trigger_events WHERE task_id = $1 AND event_id = $2",
                task_id,
                event_id,
            )
        )
        return None if found is None else str(found)

    async def count_runs_since(self, task_id: str, trigger: Trigger, since: datetime) -> int:
        count = await self._call(
            lambda c: c.fetchval(
                "SELECT count(*) FROM runs WHERE task_id = $1 AND trigger = $2 "
                "AND created_at >= $3",
                task_id,
                str(trigger),
                since,
            )
        )
        return int(count)

    async def _insert_run(
        self, conn: asyncpg.Connection, task: Task, run: NewRun, now: datetime
    ) -> Run:
        created = new_run_record(task.id, task.owner, task.retry.attempts, run, now)
        inserted = await conn.fetchval(
            "INSERT INTO runs (id, task_id, owner, trigger, scheduled_for, due_at, status, "
            "attempt, max_attempts, created_at, finished_at, output, error_message, counts, "
            "input, traceparent, tracestate) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $10, $11::jsonb, $12, $13, "
            "$14::jsonb, $15, $16) ON CONFLICT DO NOTHING RETURNING id",
            created.id,
            created.task_id,
            created.owner,
            str(created.trigger),
            created.scheduled_for,
            created.due_at,
            str(created.status),
            created.max_attempts,
            now,
            created.finished_at,
            _dumps_or_none(created.output),
            _no_nul(created.error_message),
            run.counts,
            _dumps_or_none(run.input),
            created.traceparent,
            created.tracestate,
        )
        if inserted is None:
            raise StoreError(f"run {run.id} for {run.scheduled_for} exists already")
        return created

    async def backlog(self, now: datetime) -> tuple[int, int]:
        row = await self._call(
            lambda c: c.fetchrow(
                "SELECT (SELECT count(*) FROM tasks WHERE status = 'active' "
                "AND next_fire_at IS NOT NULL AND next_fire_at <= $1) AS tasks, "
                "(SELECT count(*) FROM runs WHERE status = 'queued' AND due_at <= $1) AS runs",
                now,
            )
        )
        assert row is not None
        return int(row["tasks"]), int(row["runs"])

    async def upcoming(self) -> Upcoming:
        row = await self._call(
            lambda c: c.fetchrow(
                "SELECT (SELECT min(next_fire_at) FROM tasks "
                "WHERE status = 'active' AND next_fire_at IS NOT NULL) AS fire_at, "
                "(SELECT min(due_at) FROM runs WHERE status = 'queued') AS run_due_at, "
                "(SELECT min(lease_expires_at) FROM runs WHERE status = 'running') AS expiry"
            )
        )
        assert row is not None
        return Upcoming(row["fire_at"], row["run_due_at"], row["expiry"], self._flow.opens_at())

    async def flow_usage(
        self, owner: str, concurrency_key: str | None, rate_key: str | None, since: datetime
    ) -> tuple[int, list[datetime]]:
        row = await self._call(
            lambda c: c.fetchrow(
                "SELECT (SELECT count(*)::int FROM runs r JOIN tasks t ON t.id = r.task_id"
                "  WHERE r.status = 'running' AND t.owner = $1"
                "  AND t.concurrency->>'key' = $2) AS running,"
                " (SELECT coalesce(array_agg(started_at ORDER BY started_at), '{}')"
                "  FROM flow_starts WHERE owner = $1 AND key = $3 AND started_at > $4) AS starts",
                owner,
                concurrency_key,
                rate_key,
                since,
            )
        )
        assert row is not None
        return row["running"], list(row["starts"])

    async def request_cancel(self, owner: str | None, run_ids: Sequence[str]) -> None:
        if not run_ids:
            return
        owner_check = "" if owner is None else " AND owner = $2"
        sql = (
            "WITH l AS ("
            f"  SELECT id FROM runs WHERE id = ANY($1::text[]) AND {_UNFINISHED}{owner_check}"
            "  ORDER BY id FOR UPDATE"
            ") "
            "UPDATE runs r SET cancel_requested = true FROM l WHERE r.id = l.id"
        )
        args: list[Any] = [list(run_ids)]
        if owner is not None:
            args.append(owner)
        await self._write(lambda c: c.execute(sql, *args))

    async def get_run(self, owner: str | None, run_id: str) -> Run:
        row = await self._call(
            lambda c: c.fetchrow(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = $1", run_id)
        )
        if row is None or (owner is not None and row["owner"] != owner):
            raise RunNotFound(run_id)
        return _run_from_row(row)

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

        async def list_runs_on(conn: asyncpg.Connection) -> list[Run]:
            if task_id is not None:
                owner_check = "" if owner is None else " AND owner = $2"
                found = await conn.fetchval(
                    f"SELECT 1 FROM tasks WHERE id = $1{owner_check}",
                    *((task_id,) if owner is None else (task_id, owner)),
                )
                if found is None:
                    raise TaskNotFound(task_id)
            return [_run_from_row(r) for r in await conn.fetch(sql, *args)]

        return await self._call(list_runs_on)

    async def list_attempts(self, owner: str | None, run_id: str) -> list[Attempt]:
        async def list_attempts_on(conn: asyncpg.Connection) -> list[Attempt]:
            found = await conn.fetchval("SELECT owner FROM runs WHERE id = $1", run_id)
            if found is None or (owner is not None and found != owner):
                raise RunNotFound(run_id)
            return [
                Attempt(
                    run_id=r["run_id"],
                    number=r["number"],
                    status=AttemptStatus(r["status"]),
                    started_at=r["started_at"],
                    finished_at=r["finished_at"],
                    error_message=r["error_message"],
                    node=r["node"],
                )
                for r in await conn.fetch(
                    "SELECT run_id, number, status, started_at, finished_at, error_message, node "
                    "FROM attempts WHERE run_id = $1 ORDER BY number",
                    run_id,
                )
            ]

        return await self._call(list_attempts_on)
