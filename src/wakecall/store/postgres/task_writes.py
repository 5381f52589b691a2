"""The PostgreSQL store's writes to an owner's tasks (`write_tasks`): several in one
transaction, within the owner's task limit (one writer of new tasks per owner at a time, on
every node, by a transaction-level advisory lock), a new task with its first callback secret."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from wakecall.errors import Conflict, TaskNotFound
from wakecall.models import Task, TaskStatus
from wakecall.store.base import (
    NewEvent,
    NewTask,
    OwnerLimits,
    TaskUpdate,
    TaskWrite,
    TaskWritten,
    over_limits,
    rated_creations,
)
from wakecall.store.plans import EndMark, EventDraft
from wakecall.store.postgres.locks import _LOCK_CLASS, _lock_key
from wakecall.store.postgres.pending import _DRAFTS, _place_ends
from wakecall.store.postgres.rows import _UPDATABLE, _task_from_row, _task_to_row
from wakecall.store.postgres.sql import _TASK_COLUMNS
from wakecall.store.postgres.tasks import TaskMethods

__all__ = ["TaskWrites", "add_secret_on"]


class _RolledBack(Exception):
    """Raised inside a transaction to roll it back (a dry run) and carry its result out."""

    def __init__(self, result: list[TaskWritten]) -> None:
        super().__init__("rolled back")
        self.result = result


async def add_secret_on(
    conn: asyncpg.Connection, task_id: str, secret: str, now: datetime, retire: datetime
) -> None:
    """A new signing secret for the task's callbacks; its others stop signing at `retire`."""
    await conn.execute(
        "UPDATE callback_secrets SET retires_at = $1 WHERE task_id = $2 "
        "AND (retires_at IS NULL OR retires_at > $1)",
        retire,
        task_id,
    )
    await conn.execute(
        "INSERT INTO callback_secrets (task_id, secret, created_at, retires_at) "
        "VALUES ($1, $2, $3, NULL)",
        task_id,
        secret,
        now,
    )


class TaskWrites(TaskMethods):
    """The task writes of `PostgresStore`."""

    async def write_tasks(
        self,
        owner: str,
        writes: Sequence[TaskWrite],
        now: datetime,
        *,
        limits: OwnerLimits | None = None,
        events: Sequence[NewEvent] = (),
        dry_run: bool = False,
    ) -> list[TaskWritten]:
        # Only new tasks can break a limit (a resume or a patch never adds a live task; a
        # deletion takes one away).
        limited = limits is not None and any(isinstance(w, NewTask) for w in writes)

        async def write_tasks_on(conn: asyncpg.Connection) -> list[TaskWritten]:
            if limited:
                # One writer of new tasks per owner at a time, on every node: the count
                # below stays true until this transaction commits.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock($1, $2)",
                    _LOCK_CLASS,
                    _lock_key(f"{self.schema}:owner:{owner}"),
                )
            written: list[TaskWritten] = []
            ends: list[EventDraft | EndMark] = []
            for write in writes:
                written.append(await self._write_task(conn, owner, write, now, ends))
            if limited:
                assert limits is not None
                await self._check_limits(conn, owner, limits, written, now)
            urls = {w.task.id: w.task.callback_url for w in written if w.task is not None}
            for event in events:
                url = urls.get(event.task_id or "")
                if url is None and event.task_id and event.task_id not in urls:
                    url = (await self._task_row(conn, owner, event.task_id))["callback_url"]
                ends.append(_DRAFTS.draft(owner, event, now, url))
            marks = [p.task.id for p in ends if isinstance(p, EndMark)]
            announced = await self._mark_ends_announced(conn, marks)
            await self._append_events(conn, _place_ends(ends, announced), due=True)
            if dry_run:
                raise _RolledBack(written)
            return written

        try:
            return await self._tx(write_tasks_on)
        except _RolledBack as rolled_back:
            return rolled_back.result

    async def _check_limits(
        self,
        conn: asyncpg.Connection,
        owner: str,
        limits: OwnerLimits,
        written: list[TaskWritten],
        now: datetime,
    ) -> None:
        """Record the new tasks' creations, then raise `LimitReached` if the writes break a
        limit (the owner's advisory lock, taken first, keeps other writers of new tasks out)."""
        made = rated_creations(limits, written)
        recent: dict[str, int] = {}
        if made:
            await conn.execute(
                "DELETE FROM task_creations WHERE owner = $1 AND created_at <= $2",
                owner,
                now - timedelta(minutes=1),
            )
            kinds = [kind for kind, count in made.items() for _ in range(count)]
            await conn.execute(
                "INSERT INTO task_creations (owner, kind, created_at) "
                "SELECT $1, kind, $2 FROM unnest($3::text[]) AS k(kind)",
                owner,
                now,
                kinds,
            )
            rows = await conn.fetch(
                "SELECT kind, count(*) AS n FROM task_creations WHERE owner = $1 "
                "AND kind = ANY($2::text[]) GROUP BY kind",
                owner,
                list(made),
            )
            recent = {row["kind"]: int(row["n"]) for row in rows}
        broken = over_limits(limits, await self._live_tasks(conn, owner), written, recent)
        if broken is not None:
            raise broken

    @staticmethod
    async def _live_tasks(conn: asyncpg.Connection, owner: str) -> int:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM tasks WHERE owner = $1 AND status IN ('active', 'paused')",
                owner,
            )
        )

    async def _write_task(
        self,
        conn: asyncpg.Connection,
        owner: str,
        write: TaskWrite,
        now: datetime,
        ends: list[EventDraft | EndMark],
    ) -> TaskWritten:
        if isinstance(write, NewTask):
            return await self._insert_task(conn, owner, write, now)
        if isinstance(write, TaskUpdate):
            task = await self._update_task_on(conn, owner, write, now)
            if "status" in write.changes and task.status == TaskStatus.EXPIRED:
                ends.append(EndMark(task, now))
            return TaskWritten(task)
        return await self._delete_task_on(conn, owner, write.task_id)

    async def _insert_task(
        self, conn: asyncpg.Connection, owner: str, write: NewTask, now: datetime
    ) -> TaskWritten:
        task = write.task
        if task.owner != owner:
            raise ValueError(f"task {task.id} belongs to {task.owner!r}, not {owner!r}")
        if task.idempotency_key is not None:
            found = await conn.fetchrow(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE owner = $1 AND idempotency_key = $2",
                owner,
                task.idempotency_key,
            )
            if found is not None:
                return TaskWritten(_task_from_row(found))
        row = _task_to_row(task)
        values = ", ".join(f"${i}" for i in range(1, len(row) + 1))
        inserted = await conn.fetchval(
            f"INSERT INTO tasks ({_TASK_COLUMNS}) VALUES ({values}) "
            "ON CONFLICT (id) DO NOTHING RETURNING id",
            *row,
        )
        if inserted is None:
            raise Conflict(f"a task with id {task.id!r} exists already; choose another id")
        if write.callback_secret is not None:
            await add_secret_on(conn, task.id, write.callback_secret, now, now)
        return TaskWritten(task, created=True)

    async def _update_task_on(
        self, conn: asyncpg.Connection, owner: str | None, write: TaskUpdate, now: datetime
    ) -> Task:
        changes = write.changes
        unknown = set(changes) - set(_UPDATABLE)
        if unknown:
            raise ValueError(f"a task update cannot set {sorted(unknown)}")
        current = _task_from_row(await self._task_row(conn, owner, write.task_id, "FOR UPDATE"))
        if write.seen_status is not None and current.status != write.seen_status:
            raise Conflict(
                f"task {current.id} changed meanwhile: it is now {current.status}, not "
                f"{write.seen_status}; read it again and retry"
            )
        values = [_UPDATABLE[name](value) for name, value in changes.items()] + [now, current.id]
        sets = [f"{name} = ${i}" for i, name in enumerate(changes, start=1)]
        sets.append(f"updated_at = ${len(changes) + 1}")
        row = await conn.fetchrow(
            f"UPDATE tasks SET {', '.join(sets)} WHERE id = ${len(changes) + 2} "
            f"RETURNING {_TASK_COLUMNS}",
            *values,
        )
        assert row is not None  # locked above
        if write.callback_secret is not None:
            retire = write.retire_secrets_at or now
            await add_secret_on(conn, current.id, write.callback_secret, now, retire)
        return _task_from_row(row)

    async def _delete_task_on(
        self, conn: asyncpg.Connection, owner: str | None, task_id: str
    ) -> TaskWritten:
        row = await conn.fetchrow(self._delete_task_sql(owner), *self._owned(task_id, owner))
        assert row is not None
        if not row["found"]:
            raise TaskNotFound(task_id)
        live = row["status"] in ("active", "paused")
        return TaskWritten(None, running=tuple(row["running"]), was_live=live)

    @staticmethod
    def _owned(task_id: str, owner: str | None) -> tuple[str, ...]:
        return (task_id,) if owner is None else (task_id, owner)

    @staticmethod
    def _delete_task_sql(owner: str | None) -> str:
        owner_check = "" if owner is None else " AND owner = $2"
        return (
            f"WITH t AS (DELETE FROM tasks WHERE id = $1{owner_check} RETURNING id, status), "
            "l AS (SELECT id FROM runs WHERE task_id IN (SELECT id FROM t) "
            "  ORDER BY id FOR UPDATE), "
            "r AS (DELETE FROM runs WHERE id IN (SELECT id FROM l) RETURNING id, status), "
            "a AS (DELETE FROM attempts WHERE run_id IN (SELECT id FROM r)), "
            # Pending deliveries keep their signing secrets until they are done.
            "k AS (DELETE FROM callback_secrets WHERE task_id IN (SELECT id FROM t) "
            "  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.task_id = $1 "
            "  AND d.status = 'pending')) "
            "SELECT (SELECT count(*) FROM t) AS found, (SELECT status FROM t) AS status, "
            "(SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM r "
            "WHERE status = 'running') AS running"
        )
