"""The SQLite store's retention: old runs, events and deliveries pruned."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from wakecall.store.base import PruneCounts
from wakecall.store.sqlite.connection import StoreConnection
from wakecall.store.sqlite.rows import _us


class Pruning(StoreConnection):
    """The retention of `SQLiteStore`."""

    async def prune(
        self,
        now: datetime,
        *,
        runs_per_task: int,
        run_max_age: timedelta,
        event_max_age: timedelta,
    ) -> PruneCounts:
        run_cutoff = _us(now - run_max_age)
        event_cutoff = _us(now - event_max_age)
        terminal = "status NOT IN ('queued', 'running')"

        def prune_on(conn: sqlite3.Connection) -> PruneCounts:
            doomed = [
                r[0]
                for r in conn.execute(
                    f"SELECT id FROM runs WHERE {terminal} AND finished_at < ?", (run_cutoff,)
                )
            ]
            doomed += [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM (SELECT id, finished_at, row_number() OVER "
                    "(PARTITION BY task_id ORDER BY id DESC) AS n FROM runs "
                    f"WHERE {terminal}) WHERE n > ? AND finished_at >= ?",
                    (runs_per_task, run_cutoff),
                )
            ]
            for start in range(0, len(doomed), 500):
                chunk = doomed[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                conn.execute(f"DELETE FROM attempts WHERE run_id IN ({marks})", chunk)
                conn.execute(f"DELETE FROM runs WHERE id IN ({marks})", chunk)
            # Each owner's horizon first: a reader's position older than it may skip events.
            conn.execute(
                "INSERT INTO event_horizons (owner, pruned_through) "
                "SELECT owner, max(cursor) FROM events WHERE created_at < ? GROUP BY owner "
                "ON CONFLICT (owner) DO UPDATE SET "
                "pruned_through = max(pruned_through, excluded.pruned_through)",
                (event_cutoff,),
            )
            events = conn.execute(
                "DELETE FROM events WHERE created_at < ?", (event_cutoff,)
            ).rowcount
            conn.execute(
                "DELETE FROM deliveries WHERE status != 'pending' AND created_at < ?",
                (event_cutoff,),
            )
            # Event ids are remembered (against redelivery) as long as events are kept.
            conn.execute("DELETE FROM trigger_events WHERE received_at < ?", (event_cutoff,))
            return PruneCounts(runs=len(doomed), events=events)

        return await self._tx(prune_on)
