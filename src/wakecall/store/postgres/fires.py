"""The PostgreSQL store's fires: due tasks claimed, their fires recorded (new runs, events, the
tasks moved on), and the pass that fires and starts runs in steps."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from wakecall.models import Run, RunStatus, Task, TaskStatus
from wakecall.store.base import DueTask, FirePlan, FireResult, new_run_record
from wakecall.store.plans import end_marks, plan_fire_runs, plan_fire_writes
from wakecall.store.postgres.finishes import RunFinishes
from wakecall.store.postgres.pending import _DRAFTS, _place_ends
from wakecall.store.postgres.rows import _dumps_or_none, _no_nul, _task_from_row
from wakecall.store.postgres.sql import _COUNTED, _TASK_COLUMNS, _UNFINISHED, _cols
from wakecall.tracecontext import trace_columns


def _plain(plan: FirePlan) -> bool:
    """A plan whose recording appends no event and flags no run: no missed run, no expiry,
    no run to cancel, no event of its own."""
    return (
        not plan.events
        and not plan.cancel_run_ids
        and (plan.end is None or plan.end.status != TaskStatus.EXPIRED)
        and all(new.status != RunStatus.MISSED for new in plan.runs)
        and plan.instant is None
    )


class FireMethods(RunFinishes):
    """The fire methods of `PostgresStore`."""

    async def claim_due_tasks(
        self,
        node: str,
        now: datetime,
        limit: int,
        lease: timedelta,
        *,
        due_by: datetime | None = None,
    ) -> list[DueTask]:
        sql = (
            "WITH due AS ("
            "  SELECT id FROM tasks"
            "  WHERE status = 'active' AND next_fire_at IS NOT NULL AND next_fire_at <= $5"
            "  AND (claimed_by IS NULL OR claim_expires_at < $1)"
            "  ORDER BY next_fire_at, id LIMIT $2 FOR UPDATE SKIP LOCKED"
            "), claimed AS ("
            "  UPDATE tasks t SET claimed_by = $3, claim_expires_at = $4 FROM due"
            f"  WHERE t.id = due.id RETURNING {', '.join('t.' + c for c in _cols(_TASK_COLUMNS))}"
            ") "
            # One look at each task's unfinished runs (by `runs_task`; see _PLANNER).
            "SELECT c.*, u.queued, u.running FROM claimed c, LATERAL ("
            "  SELECT count(*) FILTER (WHERE r.status = 'queued') AS queued,"
            "  array_agg(r.id ORDER BY r.id) FILTER (WHERE r.status = 'running') AS running"
            f"  FROM runs r WHERE r.task_id = c.id AND r.{_UNFINISHED}) u "
            "ORDER BY c.next_fire_at, c.id"
        )
        queued, running = len(_cols(_TASK_COLUMNS)), len(_cols(_TASK_COLUMNS)) + 1

        async def claim_due_tasks_on(conn: asyncpg.Connection) -> list[DueTask]:
            reach = now if due_by is None else max(now, due_by)
            rows = await conn.fetch(sql, now, limit, node, now + lease, reach)
            return [DueTask(_task_from_row(r), r[queued], tuple(r[running] or ())) for r in rows]

        return await self._write(claim_due_tasks_on)

    async def record_fires(self, node: str, now: datetime, plans: Sequence[FirePlan]) -> FireResult:
        if not plans:
            return FireResult([], [], [])
        wanted = sorted({p.task_id for p in plans})
        if len(wanted) == len(plans) and all(_plain(p) for p in plans):
            return await self._write(
                lambda conn: self._record_plain_fires(conn, node, now, plans, wanted)
            )

        async def record_fires_on(conn: asyncpg.Connection) -> FireResult:
            rows = await conn.fetch(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = ANY($1::text[]) "
                "ORDER BY id FOR UPDATE",
                wanted,
            )
            tasks = {r["id"]: _task_from_row(r) for r in rows}
            lost: list[str] = []
            accepted: list[tuple[FirePlan, Task]] = []
            seen: set[str] = set()
            stopped: list[str] = []
            for plan in plans:
                task = tasks.get(plan.task_id)
                # A second plan for one task finds the claim already released by the first.
                if task is None or task.claimed_by != node or plan.task_id in seen:
                    lost.append(plan.task_id)
                    continue
                if task.status != TaskStatus.ACTIVE:  # paused (or ended) since it was claimed
                    lost.append(plan.task_id)
                    stopped.append(plan.task_id)
                    continue
                seen.add(plan.task_id)
                accepted.append((plan, task))
            if stopped:
                await _release_on(conn, node, stopped)
            if not accepted:
                return FireResult([], [], lost)

            candidates = plan_fire_runs(accepted, now)
            inserted = set(await self._write_fires(conn, node, now, accepted, candidates))
            writes = plan_fire_writes(accepted, candidates, inserted, now, _DRAFTS)
            created, settled, settled_tasks = writes.created, writes.settled, writes.settled_tasks
            queued_more = False
            if settled:
                await conn.execute(
                    "INSERT INTO attempts (run_id, number, status, started_at, finished_at, node)"
                    " SELECT id, 1, 'success', $2, $2, $3 FROM unnest($1::text[]) AS u(id)",
                    [run.id for run in settled],
                    now,
                    node,
                )
                queued_more = await self._queue_dependents(
                    conn, settled_tasks, set(settled_tasks), settled
                )
            announced = await self._mark_ends_announced(conn, end_marks(writes.events))
            # Queued runs may be more than this node can start: wake the others.
            due = queued_more or any(r.status == RunStatus.QUEUED for r in created)
            placed = _place_ends(writes.events, announced)
            events = await self._append_events(conn, placed, due=due)
            return FireResult(created, events, lost, settled)

        return await self._tx(record_fires_on)

    async def _record_plain_fires(
        self,
        conn: asyncpg.Connection,
        node: str,
        now: datetime,
        plans: Sequence[FirePlan],
        wanted: Sequence[str],
    ) -> FireResult:
        """`record_fires` of plans that append no event (see `_plain`), one per task, in one
        statement: lock the tasks (in id order), keep those `node` still claims, insert their
        runs, move the tasks on and release them, and wake the other nodes when a run was
        queued."""
        runs = [(plan.task_id, new) for plan in plans for new in plan.runs]
        row = await conn.fetchrow(
            "WITH locked AS MATERIALIZED ("
            "  SELECT id, owner, retry, claimed_by, status FROM tasks WHERE id = ANY($1::text[])"
            "  ORDER BY id FOR UPDATE"
            "), mine AS MATERIALIZED ("
            "  SELECT id, owner, (retry ->> 'attempts')::int AS attempts FROM locked"
            "  WHERE claimed_by = $2 AND status = 'active'"
            "), stopped AS ("  # paused (or ended) since it was claimed: released unfired
            "  UPDATE tasks t SET claimed_by = NULL, claim_expires_at = NULL"
            "  FROM locked l WHERE t.id = l.id AND l.claimed_by = $2 AND l.status <> 'active'"
            "), ins AS ("
            "  INSERT INTO runs (id, task_id, owner, trigger, scheduled_for, due_at, status,"
            "    attempt, max_attempts, created_at, finished_at, output, error_message, counts,"
            "    input, traceparent, tracestate)"
            "  SELECT u.id, u.task_id, m.owner, u.trigger, u.scheduled_for, u.due_at, u.status,"
            "    0, m.attempts, $3, u.finished_at, u.output::jsonb, u.error_message, u.counts,"
            "    u.input::jsonb, u.traceparent, u.tracestate"
            "  FROM unnest($4::text[], $5::text[], $6::text[], $7::timestamptz[],"
            "    $8::timestamptz[], $9::text[], $10::timestamptz[], $11::text[], $12::text[],"
            "    $13::bool[], $14::text[], $22::text[], $23::text[]) WITH ORDINALITY AS u(id,"
            "    task_id, trigger, scheduled_for, due_at, status, finished_at, output,"
            "    error_message, counts, input, traceparent, tracestate, n)"
            "  JOIN mine m ON m.id = u.task_id"
            "  ORDER BY u.n"
            "  ON CONFLICT DO NOTHING"
            "  RETURNING id, task_id, counts, status"
            f"), counted AS ({_COUNTED}"
            "), moved AS ("
            "  UPDATE tasks t SET next_fire_at = p.next_fire_at, last_fire_at = p.last_fire_at,"
            "    run_count = t.run_count"
            "      + coalesce(((SELECT n FROM counted) ->> p.id)::bigint, 0),"
            "    status = coalesce(p.status, t.status),"
            "    end_reason = CASE WHEN p.status IS NULL THEN t.end_reason ELSE p.end_reason END,"
            "    claimed_by = NULL, claim_expires_at = NULL, updated_at = $3"
            "  FROM unnest($15::text[], $16::timestamptz[], $17::timestamptz[], $18::text[],"
            "    $19::text[]) AS p(id, next_fire_at, last_fire_at, status, end_reason)"
            "  WHERE t.id = p.id AND t.id IN (SELECT id FROM mine)"
            "), hint AS ("
            "  SELECT pg_notify($20, $21) WHERE EXISTS (SELECT FROM ins WHERE status = 'queued')"
            ") "
            "SELECT (SELECT coalesce(array_agg(id), '{}') FROM mine),"
            " (SELECT coalesce(array_agg(owner), '{}') FROM mine),"
            " (SELECT coalesce(array_agg(attempts), '{}') FROM mine),"
            " (SELECT coalesce(array_agg(id), '{}') FROM ins),"
            " (SELECT count(*) FROM hint)",
            list(wanted),
            node,
            now,
            [new.id for _, new in runs],
            [task_id for task_id, _ in runs],
            [str(new.trigger) for _, new in runs],
            [new.scheduled_for for _, new in runs],
            [new.due_at for _, new in runs],
            [str(new.status) for _, new in runs],
            [now if new.status.is_terminal else None for _, new in runs],
            [_dumps_or_none(new.output) for _, new in runs],
            [_no_nul(new.error_message) for _, new in runs],
            [new.counts for _, new in runs],
            [_dumps_or_none(new.input) for _, new in runs],
            [plan.task_id for plan in plans],
            [plan.next_fire_at for plan in plans],
            [plan.last_fire_at for plan in plans],
            [None if plan.end is None else str(plan.end.status) for plan in plans],
            [None if plan.end is None else plan.end.reason for plan in plans],
            self.channel,
            self._hint_payload(due=True),
            [trace_columns(new.trace)[0] for _, new in runs],
            [trace_columns(new.trace)[1] for _, new in runs],
        )
        assert row is not None
        claimed = {t: (owner, n) for t, owner, n in zip(row[0], row[1], row[2], strict=True)}
        inserted = set(row[3])
        created: list[Run] = []
        lost: list[str] = []
        for plan in plans:
            found = claimed.get(plan.task_id)
            if found is None:
                lost.append(plan.task_id)
                continue
            owner, attempts = found
            created.extend(
                new_run_record(plan.task_id, owner, attempts, new, now)
                for new in plan.runs
                if new.id in inserted
            )
        return FireResult(created, [], lost)

    @staticmethod
    async def _write_fires(
        conn: asyncpg.Connection,
        node: str,
        now: datetime,
        accepted: Sequence[tuple[FirePlan, Task]],
        candidates: Sequence[tuple[Run, bool]],
    ) -> list[str]:
        """Insert the runs (a fire already recorded is skipped), move the tasks on, release
        their claims and flag runs to cancel, in one statement; returns the inserted run ids."""
        runs = [r for r, _ in candidates]
        cancel = [run_id for plan, _ in accepted for run_id in plan.cancel_run_ids]
        rows = await conn.fetch(
            "WITH ins AS ("
            "  INSERT INTO runs (id, task_id, owner, trigger, scheduled_for, due_at, status,"
            "    attempt, max_attempts, created_at, started_at, finished_at, duration_ms,"
            "    output, error_message, counts, traceparent, tracestate)"
            "  SELECT u.id, u.task_id, u.owner, u.trigger, u.scheduled_for, u.due_at, u.status,"
            "    u.attempt, u.max_attempts, $1, u.started_at, u.finished_at, u.duration_ms,"
            "    u.output::jsonb, u.error_message, u.counts, u.traceparent, u.tracestate"
            "  FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],"
            "    $7::timestamptz[], $8::text[], $9::int[], $10::timestamptz[], $11::text[],"
            "    $12::text[], $13::bool[], $21::int[], $22::timestamptz[], $23::bigint[],"
            "    $24::text[], $25::text[])"
            "    WITH ORDINALITY AS u(id, task_id, owner, trigger,"
            "    scheduled_for, due_at, status, max_attempts, finished_at, output,"
            "    error_message, counts, attempt, started_at, duration_ms, traceparent,"
            "    tracestate, n)"
            "  ORDER BY u.n"
            "  ON CONFLICT DO NOTHING"
            "  RETURNING id, task_id, counts"
            f"), counted AS ({_COUNTED}"
            "), moved AS ("
            "  UPDATE tasks t SET next_fire_at = p.next_fire_at, last_fire_at = p.last_fire_at,"
            "    run_count = t.run_count"
            "      + coalesce(((SELECT n FROM counted) ->> p.id)::bigint, 0),"
            "    status = p.status, end_reason = p.end_reason, claimed_by = NULL,"
            "    claim_expires_at = NULL, updated_at = $1"
            "  FROM unnest($14::text[], $15::timestamptz[], $16::timestamptz[], $17::text[],"
            "    $18::text[]) AS p(id, next_fire_at, last_fire_at, status, end_reason)"
            "  WHERE t.id = p.id AND t.claimed_by = $19"
            "), to_flag AS ("
            f"  SELECT id FROM runs WHERE id = ANY($20::text[]) AND {_UNFINISHED}"
            "  ORDER BY id FOR UPDATE"
            "), flagged AS ("
            "  UPDATE runs r SET cancel_requested = true FROM to_flag f WHERE r.id = f.id"
            ") "
            "SELECT id FROM ins",
            now,
            [r.id for r in runs],
            [r.task_id for r in runs],
            [r.owner for r in runs],
            [str(r.trigger) for r in runs],
            [r.scheduled_for for r in runs],
            [r.due_at for r in runs],
            [str(r.status) for r in runs],
            [r.max_attempts for r in runs],
            [r.finished_at for r in runs],
            [_dumps_or_none(r.output) for r in runs],
            [_no_nul(r.error_message) for r in runs],
            [counts for _, counts in candidates],
            [task.id for _, task in accepted],
            [plan.next_fire_at for plan, _ in accepted],
            [plan.last_fire_at for plan, _ in accepted],
            [str(plan.end.status if plan.end else task.status) for plan, task in accepted],
            [plan.end.reason if plan.end else task.end_reason for plan, task in accepted],
            node,
            cancel,
            [r.attempt for r in runs],
            [r.started_at for r in runs],
            [r.duration_ms for r in runs],
            [r.traceparent for r in runs],
            [r.tracestate for r in runs],
        )
        return [r["id"] for r in rows]

    async def release_tasks(self, node: str, task_ids: Sequence[str]) -> None:
        if not task_ids:
            return

        async def release_tasks_on(conn: asyncpg.Connection) -> None:
            await _release_on(conn, node, task_ids)
            await self._hint(conn, due=True)

        await self._write(release_tasks_on)


async def _release_on(conn: asyncpg.Connection, node: str, task_ids: Sequence[str]) -> None:
    """Give back `node`'s claims on these tasks."""
    await conn.execute(
        "UPDATE tasks SET claimed_by = NULL, claim_expires_at = NULL "
        "WHERE claimed_by = $1 AND id = ANY($2::text[])",
        node,
        list(task_ids),
    )
