"""The PostgreSQL store's retention: old runs, events and deliveries pruned."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from wakecall.store.base import PruneCounts
from wakecall.store.postgres.connection import StoreConnection


class Pruning(StoreConnection):
    """The retention of `PostgresStore`."""

    async def prune(
        self,
        now: datetime,
        *,
        runs_per_task: int,
        run_max_age: timedelta,
        event_max_age: timedelta,
    ) -> PruneCounts:
        terminal = "status NOT IN ('queued', 'running')"
        sql = (
            "WITH doomed AS ("
            f"  SELECT id FROM runs WHERE {terminal} AND finished_at < $1"
            "  UNION ALL"
            "  SELECT id FROM (SELECT id, finished_at, row_number() OVER"
            "    (PARTITION BY task_id ORDER BY id DESC) AS n FROM runs"
            f"    WHERE {terminal}) ranked WHERE n > $2 AND finished_at >= $1"
            "), locked AS ("
            "  SELECT id FROM runs WHERE id IN (SELECT id FROM doomed) ORDER BY id FOR UPDATE"
            "), gone_attempts AS ("
            "  DELETE FROM attempts WHERE run_id IN (SELECT id FROM locked)"
            "), gone_runs AS ("
            "  DELETE FROM runs WHERE id IN (SELECT id FROM locked) RETURNING 1"
            "), horizons AS ("
            "  INSERT INTO event_horizons (owner, pruned_through)"
            "  SELECT owner, max(cursor) FROM events WHERE created_at < $3 GROUP BY owner"
            "  ON CONFLICT (owner) DO UPDATE SET pruned_through ="
            "  greatest(event_horizons.pruned_through, excluded.pruned_through)"
            "), gone_events AS ("
            "  DELETE FROM events WHERE created_at < $3 RETURNING 1"
            "), gone_deliveries AS ("
            "  DELETE FROM deliveries WHERE status != 'pending' AND created_at < $3"
            "), gone_trigger_events AS ("
            "  DELETE FROM trigger_events WHERE received_at < $3"
            ") "
            "SELECT (SELECT count(*) FROM gone_runs) AS runs,"
            " (SELECT count(*) FROM gone_events) AS events"
        )

        async def prune_on(conn: asyncpg.Connection) -> PruneCounts:
            row = await conn.fetchrow(sql, now - run_max_age, runs_per_task, now - event_max_age)
            assert row is not None
            return PruneCounts(runs=row["runs"], events=row["events"])

        return await self._write(prune_on)
