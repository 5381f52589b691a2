"""The PostgreSQL store's claims of runs: choosing queued runs to start (the overlap rule, under
per-task locks), claiming them under a lease, starting their attempts, extending and
releasing leases, and reclaiming runs whose lease expired."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from wakecall.models import Run, Task
from wakecall.store.postgres.locks import _lock_tasks
from wakecall.store.postgres.rows import _run_from_row, _task_from_row
from wakecall.store.postgres.runs import RunMethods
from wakecall.store.postgres.sql import (
    _CLAIM_SQL,
    _RUN_COLUMNS,
    _RUN_WIDTH,
    _START_DUE_SQL,
    _START_SQL,
    _UNFINISHED,
    _cols,
)
from wakecall.store.postgres.started import _Started


class RunLeases(RunMethods):
    """The run claims of `PostgresStore`."""

    async def claim_runs(self, node: str, now: datetime, limit: int, lease: timedelta) -> list[Run]:
        async def claim_runs_on(conn: asyncpg.Connection) -> list[Run]:
            rows = await self._claim_runs_on(conn, node, now, limit, lease, start=False)
            return [_run_from_row(r) for r in rows]

        return await self._tx(claim_runs_on)

    async def start_due_runs(
        self, node: str, now: datetime, limit: int, lease: timedelta
    ) -> list[tuple[Run, Task]]:
        async def start_due_runs_on(conn: asyncpg.Connection) -> list[_Started]:
            rows = await self._claim_runs_on(conn, node, now, limit, lease, start=True)
            return [
                _Started(node, _run_from_row(r), _task_from_row(r[_RUN_WIDTH:]), r[-2], r[-1])
                for r in rows
            ]

        started = await self._tx(start_due_runs_on)
        for item in started:
            self._started.keep(item.run.id, item)  # forgets the oldest: its finish never came
        return [(item.run, item.task) for item in started]

    async def _claim_runs_on(
        self,
        conn: asyncpg.Connection,
        node: str,
        now: datetime,
        limit: int,
        lease: timedelta,
        *,
        start: bool,
    ) -> list[asyncpg.Record]:
        """Claim queued runs due at `now` for `node`, in due order (inside a transaction); with
        `start`, start their next attempt too. Rows of `_RUN_COLUMNS` as written, followed
        with `start` by their task's `_TASK_COLUMNS`."""
        # Candidates in due order, locked so no other claimant takes them meanwhile.
        rows = await conn.fetch(
            "SELECT r.id, r.task_id, coalesce(r.overlap, t.overlap) != 'allow' FROM runs r "
            "JOIN tasks t ON t.id = r.task_id "
            "WHERE r.status = 'queued' AND r.due_at <= $1 "
            "AND (r.claimed_by IS NULL OR r.lease_expires_at < $1) "
            "ORDER BY r.due_at, r.id LIMIT $2 FOR UPDATE OF r SKIP LOCKED",
            now,
            limit * 4,
        )
        if not rows:
            return []
        exclusive = sorted({r[1] for r in rows if r[2]})
        if exclusive:
            # One claimant at a time per task that does not allow overlap; the next statement
            # (a fresh snapshot, which sees the other's committed claim) looks at which of
            # them are busy.
            await _lock_tasks(conn, self.schema, exclusive)
        return list(
            await conn.fetch(
                _START_DUE_SQL if start else _CLAIM_SQL,
                now,
                node,
                now + lease,
                limit,
                [r[0] for r in rows],
                [r[1] for r in rows],
                [r[2] for r in rows],
                exclusive,
            )
        )

    async def start_attempts(self, node: str, now: datetime, run_ids: Sequence[str]) -> list[Run]:
        if not run_ids:
            return []

        async def start_attempts_on(conn: asyncpg.Connection) -> list[Run]:
            rows = await conn.fetch(_START_SQL, now, node, list(run_ids))
            by_id = {r["id"]: _run_from_row(r) for r in rows}
            return [by_id[i] for i in run_ids if i in by_id]

        return await self._write(start_attempts_on)

    async def extend_leases(
        self, node: str, run_ids: Sequence[str], until: datetime
    ) -> tuple[set[str], set[str]]:
        if not run_ids:
            return set(), set()
        rows = await self._write(
            lambda c: c.fetch(
                "WITH l AS ("
                "  SELECT id FROM runs"
                f"  WHERE claimed_by = $2 AND id = ANY($3::text[]) AND {_UNFINISHED}"
                "  ORDER BY id FOR UPDATE"
                ") "
                "UPDATE runs r SET lease_expires_at = $1 FROM l WHERE r.id = l.id "
                "RETURNING r.id, r.cancel_requested",
                until,
                node,
                list(run_ids),
            )
        )
        return {r["id"] for r in rows}, {r["id"] for r in rows if r["cancel_requested"]}

    async def release_runs(self, node: str, run_ids: Sequence[str]) -> None:
        if not run_ids:
            return

        async def release_runs_on(conn: asyncpg.Connection) -> None:
            await conn.execute(
                "WITH l AS ("
                "  SELECT id FROM runs"
                "  WHERE claimed_by = $1 AND status = 'queued' AND id = ANY($2::text[])"
                "  ORDER BY id FOR UPDATE"
                ") "
                "UPDATE runs r SET claimed_by = NULL, lease_expires_at = NULL "
                "FROM l WHERE r.id = l.id",
                node,
                list(run_ids),
            )
            await self._hint(conn, due=True)

        await self._write(release_runs_on)

    async def claim_expired_runs(
        self, node: str, now: datetime, limit: int, lease: timedelta
    ) -> list[Run]:
        sql = (
            "WITH expired AS ("
            "  SELECT id FROM runs WHERE status = 'running' AND lease_expires_at < $1"
            "  ORDER BY lease_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED"
            ") "
            "UPDATE runs r SET claimed_by = $3, lease_expires_at = $4 FROM expired "
            f"WHERE r.id = expired.id RETURNING {', '.join('r.' + c for c in _cols(_RUN_COLUMNS))}"
        )

        async def claim_expired_runs_on(conn: asyncpg.Connection) -> list[Run]:
            rows = await conn.fetch(sql, now, limit, node, now + lease)
            return sorted((_run_from_row(r) for r in rows), key=lambda r: r.id)

        return await self._write(claim_expired_runs_on)
