"""The PostgreSQL store's claims of runs: choosing queued runs to start (the overlap rule, under
per-task locks), claiming them under a lease, starting their attempts, extending and
releasing leases, and reclaiming runs whose lease expired."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from wakecall.models import Run, Task
from wakecall.store.flow import (
    MAX_PERIOD,
    SEP,
    Candidate,
    candidate,
    choose,
    concurrency_keys,
    key_name,
    rate_keys,
)
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
        running = await self._running_by_key(conn, None)
        # Candidates in due order, locked so no other claimant takes them meanwhile; runs
        # their keys hold back now are not read (nor do they hide the runs behind them).
        rows = await conn.fetch(
            "SELECT r.id, r.task_id, coalesce(r.overlap, t.overlap) != 'allow', t.owner, "
            "t.concurrency::text, t.rate_limit::text FROM runs r "
            "JOIN tasks t ON t.id = r.task_id "
            "WHERE r.status = 'queued' AND r.due_at <= $1 "
            "AND (r.claimed_by IS NULL OR r.lease_expires_at < $1) "
            "AND (t.concurrency IS NULL OR coalesce((SELECT c.n FROM"
            "  unnest($3::text[], $4::int[]) AS c(k, n)"
            "  WHERE c.k = t.owner || chr(31) || (t.concurrency->>'key')), 0)"
            "  < (t.concurrency->>'limit')::int) "
            "AND (t.rate_limit IS NULL"
            "  OR t.owner || chr(31) || t.rate_limit::text <> ALL($5::text[])) "
            "ORDER BY r.due_at, r.id LIMIT $2 FOR UPDATE OF r SKIP LOCKED",
            now,
            limit * 4,
            [key_name(*pair) for pair in running],
            list(running.values()),
            self._flow.closed(now),
        )
        if not rows:
            self._flow.held = {}
            return []
        cands = [candidate(r[0], r[1], r[3], r[2], r[4], r[5]) for r in rows]
        exclusive = sorted({c.task_id for c in cands if c.exclusive})
        flows = [c for c in cands if c.flows]
        if flows:
            return await self._claim_flows_on(conn, node, now, limit, lease, cands, start=start)
        self._flow.held = {}
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
                [c.run_id for c in cands],
                [c.task_id for c in cands],
                [c.exclusive for c in cands],
                exclusive,
            )
        )

    async def _claim_flows_on(
        self,
        conn: asyncpg.Connection,
        node: str,
        now: datetime,
        limit: int,
        lease: timedelta,
        cands: list[Candidate],
        *,
        start: bool,
    ) -> list[asyncpg.Record]:
        """`_claim_runs_on` when some candidates have flow-control keys: under the locks of
        their keys (and of the exclusive tasks), taken in one sorted pass, what runs and what
        started is read afresh (each statement after the lock sees every claim committed
        before it), `choose` decides, and the starts of rate keys are logged, all before the
        transaction commits and lets the next claimant of a key in."""
        exclusive = sorted({c.task_id for c in cands if c.exclusive})
        pairs = concurrency_keys(cands)
        periods = rate_keys(cands)
        await _lock_tasks(
            conn,
            self.schema,
            exclusive,
            [f"c{SEP}{key_name(*p)}" for p in pairs] + [f"r{SEP}{key_name(*p)}" for p in periods],
        )
        busy: set[str] = set()
        if exclusive:
            busy = {
                r[0]
                for r in await conn.fetch(
                    "SELECT x.task_id FROM unnest($1::text[]) AS x(task_id), LATERAL ("
                    "  SELECT FROM runs r"
                    f"  WHERE r.task_id = x.task_id AND r.{_UNFINISHED} AND (r.status = 'running'"
                    "  OR (r.claimed_by IS NOT NULL AND r.lease_expires_at >= $2)) LIMIT 1) b",
                    exclusive,
                    now,
                )
            }
        running = await self._running_by_key(conn, [key_name(*p) for p in pairs])
        starts = await self._recent_starts(conn, periods, now)
        choice = choose(cands, limit, busy, running, starts, now)
        self._flow.note(choice, cands)
        if not choice.chosen:
            return []
        claimed = list(
            await conn.fetch(
                _START_DUE_SQL if start else _CLAIM_SQL,
                now,
                node,
                now + lease,
                limit,
                [c.run_id for c in choice.chosen],
                [c.task_id for c in choice.chosen],
                [False] * len(choice.chosen),
                [],
            )
        )
        logged = choice.starts()
        if logged:
            await conn.execute(
                "INSERT INTO flow_starts (owner, key, started_at, run_id) "
                "SELECT o, k, $1, r FROM unnest($2::text[], $3::text[], $4::text[]) AS u(o, k, r)",
                now,
                [o for o, _, _ in logged],
                [k for _, k, _ in logged],
                [r for _, _, r in logged],
            )
        return claimed

    @staticmethod
    async def _running_by_key(
        conn: asyncpg.Connection, names: list[str] | None
    ) -> dict[tuple[str, str], int]:
        """How many runs run per (owner, concurrency key), of the `names` given (`key_name`)
        or of all keys (the running runs are few)."""
        rows = await conn.fetch(
            "SELECT t.owner, t.concurrency->>'key', count(*)::int FROM runs r "
            "JOIN tasks t ON t.id = r.task_id "
            "WHERE r.status = 'running' AND t.concurrency IS NOT NULL "
            "AND ($1::text[] IS NULL OR t.owner || chr(31) || (t.concurrency->>'key') = ANY($1))"
            " GROUP BY 1, 2",
            names,
        )
        return {(r[0], r[1]): r[2] for r in rows}

    @staticmethod
    async def _recent_starts(
        conn: asyncpg.Connection, keys: dict[tuple[str, str], timedelta], now: datetime
    ) -> dict[tuple[str, str], list[datetime]]:
        """The logged starts of these (owner, rate key) pairs within their period of `now`,
        oldest first; older ones (beyond the longest period any key may have) are dropped."""
        if not keys:
            return {}
        owners = [o for o, _ in keys]
        names = [k for _, k in keys]
        await conn.execute(
            "DELETE FROM flow_starts f USING unnest($1::text[], $2::text[]) AS u(o, k) "
            "WHERE f.owner = u.o AND f.key = u.k AND f.started_at <= $3",
            owners,
            names,
            now - MAX_PERIOD,
        )
        rows = await conn.fetch(
            "SELECT u.o, u.k, f.started_at FROM"
            " unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(o, k, since)"
            " JOIN flow_starts f ON f.owner = u.o AND f.key = u.k AND f.started_at > u.since"
            " ORDER BY f.started_at",
            owners,
            names,
            [now - period for period in keys.values()],
        )
        out: dict[tuple[str, str], list[datetime]] = {pair: [] for pair in keys}
        for owner, key, at in rows:
            out[(owner, key)].append(at)
        return out

    def held_back(self) -> dict[tuple[str, str], int]:
        return dict(self._flow.held)

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
