"""The PostgreSQL store's retention: finished tasks (in chunks), old runs, events and
deliveries pruned."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

import asyncpg

from wakecall.store.base import PruneCounts
from wakecall.store.flow import MAX_PERIOD
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
        task_max_age: timedelta | None = None,
    ) -> PruneCounts:
        tasks = 0
        if task_max_age is not None:
            while True:
                gone = await self._tx(partial(_prune_finished_tasks, cutoff=now - task_max_age))
                tasks += gone
                if gone < _TASKS_PER_CHUNK:
                    break
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
            "), gone_flow_starts AS ("
            "  DELETE FROM flow_starts WHERE started_at <= $4"
            ") "
            "SELECT (SELECT count(*) FROM gone_runs) AS runs,"
            " (SELECT count(*) FROM gone_events) AS events"
        )

        async def prune_on(conn: asyncpg.Connection) -> PruneCounts:
            row = await conn.fetchrow(
                sql, now - run_max_age, runs_per_task, now - event_max_age, now - MAX_PERIOD
            )
            assert row is not None
            return PruneCounts(runs=row["runs"], events=row["events"], tasks=tasks)

        return await self._write(prune_on)


#: Finished tasks deleted per transaction.
_TASKS_PER_CHUNK = 500

#: A finished task goes once it ended before the cutoff, has no run that is unfinished or
#: finished since, and no task depends on it (a chain keeps its upstream). Tasks another node
#: is pruning are passed over.
_FINISHED_TASKS = (
    "WITH t AS ("
    "  SELECT id FROM tasks t WHERE status IN ('completed', 'expired') AND updated_at < $1"
    "  AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.task_id = t.id"
    "    AND (r.finished_at IS NULL OR r.finished_at >= $1))"
    "  AND NOT EXISTS (SELECT 1 FROM tasks d WHERE d.depends_on = t.id)"
    "  ORDER BY updated_at, id LIMIT $2 FOR UPDATE SKIP LOCKED"
    "), r AS (SELECT id FROM runs WHERE task_id IN (SELECT id FROM t) ORDER BY id FOR UPDATE"
    "), a AS (DELETE FROM attempts WHERE run_id IN (SELECT id FROM r)"
    "), gone_runs AS (DELETE FROM runs WHERE id IN (SELECT id FROM r)"
    "), e AS (DELETE FROM trigger_events WHERE task_id IN (SELECT id FROM t)"
    # Pending deliveries keep their signing secrets until they are done.
    "), k AS (DELETE FROM callback_secrets s WHERE task_id IN (SELECT id FROM t)"
    "  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.task_id = s.task_id"
    "  AND d.status = 'pending')"
    "), gone AS (DELETE FROM tasks WHERE id IN (SELECT id FROM t) RETURNING 1) "
    "SELECT count(*) FROM gone"
)


async def _prune_finished_tasks(conn: asyncpg.Connection, *, cutoff: datetime) -> int:
    """Delete one chunk of finished tasks that ended before `cutoff`: how many."""
    gone = await conn.fetchval(_FINISHED_TASKS, cutoff, _TASKS_PER_CHUNK)
    return int(gone or 0)
