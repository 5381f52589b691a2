"""The SQLite store's claims of runs: choosing queued runs to start (the overlap rule),
claiming them under a lease, starting their attempts, extending and releasing leases, and
reclaiming runs whose lease expired."""

from __future__ import annotations

import heapq
import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from wakecall.models import Run, Task
from wakecall.store.flow import MAX_PERIOD, candidate, choose, key_name, rate_keys
from wakecall.store.sqlite.rows import (
    _RUN_COLUMNS,
    _TASK_COLUMNS,
    _dt_req,
    _run_from_row,
    _task_from_row,
    _us,
)
from wakecall.store.sqlite.runs import RunMethods


class RunLeases(RunMethods):
    """The run claims of `SQLiteStore`."""

    async def claim_runs(self, node: str, now: datetime, limit: int, lease: timedelta) -> list[Run]:
        now_us, until_us = _us(now), _us(now + lease)

        def claim_runs_on(conn: sqlite3.Connection) -> list[Run]:
            chosen = self._claim_runs_on(conn, node, now_us, until_us, limit)
            fetched = self._rows_by_id(conn, f"SELECT {_RUN_COLUMNS} FROM runs", chosen)
            by_id = {r[0]: _run_from_row(r) for r in fetched}
            return [by_id[i] for i in chosen]

        return await self._tx(claim_runs_on)

    def _choose_runs(
        self,
        conn: sqlite3.Connection,
        now_us: int,
        limit: int,
        born: Sequence[tuple[Any, ...]] = (),
    ) -> list[str]:
        """Up to `limit` queued runs due at `now_us` to start, in due order: a task that does
        not allow overlap contributes its earliest queued run only, and none while one of its
        runs is running (or claimed by a live node); a run with an overlap of its own (a
        backfill's) is judged by it instead of its task's; a run with a flow-control key starts
        only within its limits (`store.flow`), and its start is logged. `born` adds runs about
        to be written queued in this transaction, as (due_at, id, task_id, overlap, owner,
        concurrency, rate_limit), the last two as stored JSON text.

        Runs without a key (the common case) are chosen by the overlap rule alone; the limits
        are read only when a due run carries a key."""
        rows = self._due_rows(conn, now_us, limit, "", ())
        if born:  # ids are unique: (due_at, id) decides
            rows = heapq.nsmallest(limit * 4, [*rows, *born])
        if not rows:
            self._flow.held = {}
            return []
        if any(r[5] is not None or r[6] is not None for r in rows):
            return self._choose_flow_runs(conn, now_us, limit, born)
        self._flow.held = {}
        busy = self._busy_tasks(conn, {r[2] for r in rows if r[3] != "allow"}, now_us)
        chosen: list[str] = []
        for row in rows:
            if len(chosen) >= limit:
                break
            if row[3] != "allow":
                if row[2] in busy:
                    continue
                busy.add(row[2])
            chosen.append(row[1])
        return chosen

    def _choose_flow_runs(
        self,
        conn: sqlite3.Connection,
        now_us: int,
        limit: int,
        born: Sequence[tuple[Any, ...]],
    ) -> list[str]:
        """`_choose_runs` when a due run carries a flow-control key: runs their keys hold back
        now are not read (nor do they hide the runs behind them); `choose` decides."""
        running = self._running_by_key(conn)
        closed = self._flow.closed(_dt_req(now_us))
        rows = self._due_rows(
            conn,
            now_us,
            limit,
            "AND (t.concurrency IS NULL OR coalesce((SELECT c.value FROM json_each(?) c"
            "  WHERE c.key = t.owner || char(31) || json_extract(t.concurrency, '$.key')), 0)"
            "  < json_extract(t.concurrency, '$.limit')) "
            "AND (t.rate_limit IS NULL OR t.owner || char(31) || t.rate_limit"
            "  NOT IN (SELECT g.value FROM json_each(?) g)) ",
            (
                json.dumps({key_name(*pair): n for pair, n in running.items()}),
                json.dumps(closed),
            ),
        )
        if born:
            rows = heapq.nsmallest(limit * 4, [*rows, *born])
        if not rows:
            self._flow.held = {}
            return []
        busy = self._busy_tasks(conn, {r[2] for r in rows if r[3] != "allow"}, now_us)
        cands = [candidate(r[1], r[2], r[4], r[3] != "allow", r[5], r[6]) for r in rows]
        now = _dt_req(now_us)
        starts = self._recent_starts(conn, rate_keys(cands), now)
        choice = choose(cands, limit, busy, running, starts, now)
        self._flow.note(choice, cands)
        logged = choice.starts()
        if logged:
            conn.executemany(
                "INSERT INTO flow_starts (owner, key, started_at, run_id) VALUES (?, ?, ?, ?)",
                [(owner, key, now_us, run_id) for owner, key, run_id in logged],
            )
        return [c.run_id for c in choice.chosen]

    @staticmethod
    def _due_rows(
        conn: sqlite3.Connection, now_us: int, limit: int, held_back: str, args: tuple[Any, ...]
    ) -> list[tuple[Any, ...]]:
        """Queued runs due at `now_us`, unclaimed or with an expired claim, in due order, as
        (due_at, id, task_id, overlap, owner, concurrency, rate_limit); `held_back` adds
        conditions (with their `args`)."""
        return conn.execute(
            "SELECT r.due_at, r.id, r.task_id, coalesce(r.overlap, t.overlap), t.owner, "
            "t.concurrency, t.rate_limit FROM runs r JOIN tasks t ON t.id = r.task_id "
            "WHERE r.status = 'queued' AND r.due_at <= ? "
            f"AND (r.claimed_by IS NULL OR r.lease_expires_at < ?) {held_back}"
            "ORDER BY r.due_at, r.id LIMIT ?",
            (now_us, now_us, *args, limit * 4),
        ).fetchall()

    @staticmethod
    def _busy_tasks(conn: sqlite3.Connection, exclusive: set[str], now_us: int) -> set[str]:
        """Which of `exclusive` (task ids) have a run running or claimed by a live node."""
        if not exclusive:
            return set()
        marks = ", ".join("?" * len(exclusive))
        return {
            r[0]
            for r in conn.execute(
                f"SELECT DISTINCT task_id FROM runs WHERE task_id IN ({marks}) AND "
                "(status = 'running' OR (status = 'queued' AND claimed_by IS NOT NULL "
                "AND lease_expires_at >= ?))",
                (*exclusive, now_us),
            )
        }

    @staticmethod
    def _running_by_key(conn: sqlite3.Connection) -> dict[tuple[str, str], int]:
        """How many runs run per (owner, concurrency key) (the running runs are few)."""
        return {
            (owner, key): n
            for owner, key, n in conn.execute(
                "SELECT t.owner, json_extract(t.concurrency, '$.key'), count(*) FROM runs r "
                "JOIN tasks t ON t.id = r.task_id "
                "WHERE r.status = 'running' AND t.concurrency IS NOT NULL GROUP BY 1, 2"
            )
        }

    @staticmethod
    def _recent_starts(
        conn: sqlite3.Connection, keys: Mapping[tuple[str, str], timedelta], now: datetime
    ) -> dict[tuple[str, str], list[datetime]]:
        """The logged starts of these (owner, rate key) pairs within their period of `now`,
        oldest first; older ones (beyond the longest period any key may have) are dropped."""
        out: dict[tuple[str, str], list[datetime]] = {}
        for (owner, key), period in keys.items():
            conn.execute(
                "DELETE FROM flow_starts WHERE owner = ? AND key = ? AND started_at <= ?",
                (owner, key, _us(now - MAX_PERIOD)),
            )
            out[(owner, key)] = [
                _dt_req(r[0])
                for r in conn.execute(
                    "SELECT started_at FROM flow_starts WHERE owner = ? AND key = ? "
                    "AND started_at > ? ORDER BY started_at",
                    (owner, key, _us(now - period)),
                )
            ]
        return out

    def _claim_runs_on(
        self,
        conn: sqlite3.Connection,
        node: str,
        now_us: int,
        until_us: int,
        limit: int,
        *,
        start: bool = False,
    ) -> list[str]:
        """Claim queued runs due at `now_us` for `node`; their ids in due order. With `start`,
        they are also marked running in their next attempt (`_start_on` without its update)."""
        chosen = self._choose_runs(conn, now_us, limit)
        self._mark_claimed(conn, node, now_us, until_us, chosen, start=start)
        return chosen

    @staticmethod
    def _mark_claimed(
        conn: sqlite3.Connection,
        node: str,
        now_us: int,
        until_us: int,
        run_ids: Sequence[str],
        *,
        start: bool,
    ) -> None:
        if not run_ids:
            return
        if not start:
            conn.executemany(
                "UPDATE runs SET claimed_by = ?, lease_expires_at = ? WHERE id = ?",
                [(node, until_us, run_id) for run_id in run_ids],
            )
        else:
            conn.executemany(
                "UPDATE runs SET claimed_by = ?, lease_expires_at = ?, status = 'running', "
                "attempt = attempt + 1, started_at = coalesce(started_at, ?) WHERE id = ?",
                [(node, until_us, now_us, run_id) for run_id in run_ids],
            )

    def held_back(self) -> dict[tuple[str, str], int]:
        return dict(self._flow.held)

    async def start_attempts(self, node: str, now: datetime, run_ids: Sequence[str]) -> list[Run]:
        if not run_ids:
            return []
        now_us = _us(now)

        def start_attempts_on(conn: sqlite3.Connection) -> list[Run]:
            by_id = {r[0]: _run_from_row(r) for r in self._start_on(conn, node, now_us, run_ids)}
            return [by_id[i] for i in run_ids if i in by_id]

        return await self._tx(start_attempts_on)

    def _start_on(
        self,
        conn: sqlite3.Connection,
        node: str,
        now_us: int,
        run_ids: Sequence[str],
        *,
        marked: bool = False,
    ) -> list[Sequence[Any]]:
        """Start the next attempt of these runs of `node` (`marked`: already marked running by
        `_claim_runs_on`); the rows of those running."""
        if not marked:
            conn.executemany(
                "UPDATE runs SET status = 'running', attempt = attempt + 1, "
                "started_at = coalesce(started_at, ?) "
                "WHERE claimed_by = ? AND status = 'queued' AND id = ?",
                [(now_us, node, run_id) for run_id in run_ids],
            )
        rows = [
            r
            for r in self._rows_by_id(conn, f"SELECT {_RUN_COLUMNS} FROM runs", list(run_ids))
            if r[15] == node and r[6] == "running"
        ]
        conn.executemany(
            "INSERT OR REPLACE INTO attempts (run_id, number, status, started_at, node) "
            "VALUES (?, ?, 'running', ?, ?)",
            [(r[0], r[7], now_us, node) for r in rows],
        )
        return rows

    async def start_due_runs(
        self, node: str, now: datetime, limit: int, lease: timedelta
    ) -> list[tuple[Run, Task]]:
        now_us, until_us = _us(now), _us(now + lease)
        return await self._tx(
            lambda conn: self._start_due_on(conn, node, now_us, until_us, limit), background=True
        )

    def _start_due_on(
        self, conn: sqlite3.Connection, node: str, now_us: int, until_us: int, limit: int
    ) -> list[tuple[Run, Task]]:
        return self._start_chosen_on(
            conn, node, now_us, until_us, self._choose_runs(conn, now_us, limit)
        )

    def _start_chosen_on(
        self, conn: sqlite3.Connection, node: str, now_us: int, until_us: int, chosen: list[str]
    ) -> list[tuple[Run, Task]]:
        """Start the stored queued runs `_choose_runs` chose, in that order, with their
        tasks."""
        if not chosen:
            return []
        self._mark_claimed(conn, node, now_us, until_us, chosen, start=True)
        started = self._start_on(conn, node, now_us, chosen, marked=True)
        runs = {r[0]: _run_from_row(r) for r in started}
        task_ids = list(dict.fromkeys(run.task_id for run in runs.values()))
        tasks = {
            r[0]: _task_from_row(r)
            for r in self._rows_by_id(conn, f"SELECT {_TASK_COLUMNS} FROM tasks", task_ids)
        }
        return [(runs[i], tasks[runs[i].task_id]) for i in chosen if i in runs]

    async def extend_leases(
        self, node: str, run_ids: Sequence[str], until: datetime
    ) -> tuple[set[str], set[str]]:
        if not run_ids:
            return set(), set()
        marks = ", ".join("?" * len(run_ids))

        def extend_leases_on(conn: sqlite3.Connection) -> tuple[set[str], set[str]]:
            conn.execute(
                f"UPDATE runs SET lease_expires_at = ? WHERE claimed_by = ? AND id IN ({marks}) "
                "AND status IN ('queued', 'running')",
                (_us(until), node, *run_ids),
            )
            held: set[str] = set()
            cancel: set[str] = set()
            for run_id, cancel_requested in conn.execute(
                f"SELECT id, cancel_requested FROM runs WHERE claimed_by = ? AND id IN ({marks}) "
                "AND status IN ('queued', 'running')",
                (node, *run_ids),
            ):
                held.add(run_id)
                if cancel_requested:
                    cancel.add(run_id)
            return held, cancel

        return await self._tx(extend_leases_on, background=True)

    async def release_runs(self, node: str, run_ids: Sequence[str]) -> None:
        if not run_ids:
            return
        marks = ", ".join("?" * len(run_ids))

        def release_runs_on(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE runs SET claimed_by = NULL, lease_expires_at = NULL "
                f"WHERE claimed_by = ? AND status = 'queued' AND id IN ({marks})",
                (node, *run_ids),
            )

        await self._tx(release_runs_on)

    async def claim_expired_runs(
        self, node: str, now: datetime, limit: int, lease: timedelta
    ) -> list[Run]:
        now_us, until_us = _us(now), _us(now + lease)

        def claim_expired_runs_on(conn: sqlite3.Connection) -> list[Run]:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM runs WHERE status = 'running' AND lease_expires_at < ? "
                    "ORDER BY lease_expires_at LIMIT ?",
                    (now_us, limit),
                )
            ]
            if not ids:
                return []
            marks = ", ".join("?" * len(ids))
            conn.execute(
                f"UPDATE runs SET claimed_by = ?, lease_expires_at = ? WHERE id IN ({marks})",
                (node, until_us, *ids),
            )
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE id IN ({marks})", ids
            ).fetchall()
            return [_run_from_row(r) for r in rows]

        return await self._tx(claim_expired_runs_on, background=True)
