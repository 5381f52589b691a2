"""The SQLite store's writes to an owner's tasks (`write_tasks`): several in one transaction,
within the owner's task limit, a new task with its first callback secret."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

from wakecall.errors import Conflict
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
from wakecall.store.sqlite.connection import _DRAFTS
from wakecall.store.sqlite.rows import _TASK_COLUMNS, _UPDATABLE, _task_from_row, _task_to_row, _us
from wakecall.store.sqlite.tasks import TaskMethods

__all__ = ["TaskWrites", "add_secret_on"]


_INSERT_TASK = (
    f"INSERT INTO tasks ({_TASK_COLUMNS}) VALUES ({', '.join('?' * len(_TASK_COLUMNS.split(',')))})"
)


#: Writes in one call from which the transaction gets a larger page cache (`_roomy_cache`).
_MANY_WRITES = 1_000
#: The page cache for those, in KiB (SQLite's default is 2 MiB). Pages are taken only as the
#: transaction touches them and given back when it ends.
_ROOMY_CACHE_KIB = 256 * 1024


@contextmanager
def _roomy_cache(conn: sqlite3.Connection, writes: int) -> Iterator[None]:
    """A page cache that holds the tables and indexes a large batch of writes touches: with
    SQLite's default of 2 MiB, a transaction of 100,000 new tasks spills changed pages to
    the log before it commits; in `wakecall apply` of such a file the transaction took
    4.95–5.1 s with the default and 4.22–4.3 s with this (`benchmarks/analysis.md`, part 12)."""
    if writes < _MANY_WRITES:
        yield
        return
    before = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute(f"PRAGMA cache_size = -{_ROOMY_CACHE_KIB}")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA cache_size = {int(before)}")


class _RolledBack(Exception):
    """Raised inside a transaction to roll it back (a dry run) and carry its result out."""

    def __init__(self, result: list[TaskWritten]) -> None:
        super().__init__("rolled back")
        self.result = result


def add_secret_on(
    conn: sqlite3.Connection, task_id: str, secret: str, now: datetime, retire: datetime
) -> None:
    """A new signing secret for the task's callbacks; its others stop signing at `retire`."""
    retire_us = _us(retire)
    conn.execute(
        "UPDATE callback_secrets SET retires_at = ? WHERE task_id = ? "
        "AND (retires_at IS NULL OR retires_at > ?)",
        (retire_us, task_id, retire_us),
    )
    conn.execute(
        "INSERT INTO callback_secrets (task_id, secret, created_at, retires_at) "
        "VALUES (?, ?, ?, NULL)",
        (task_id, secret, _us(now)),
    )


class TaskWrites(TaskMethods):
    """The task writes of `SQLiteStore`."""

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

        def write_tasks_on(conn: sqlite3.Connection) -> list[TaskWritten]:
            pending: list[EventDraft | EndMark] = []
            with _roomy_cache(conn, len(writes)):
                written = [self._write_task(conn, owner, write, now, pending) for write in writes]
            if limited:
                assert limits is not None
                self._check_limits(conn, owner, limits, written, now)
            by_id = {w.task.id: w.task for w in written if w.task is not None}
            for event in events:
                task = by_id.get(event.task_id or "") or _task_from_row(
                    self._task_row(conn, owner, event.task_id or "")
                )
                pending.append(_DRAFTS.draft(owner, event, now, task.callback_url))
            self._append_with_ends(conn, pending)
            if dry_run:
                raise _RolledBack(written)
            return written

        try:
            return await self._tx(write_tasks_on)
        except _RolledBack as rolled_back:
            return rolled_back.result

    def _check_limits(
        self,
        conn: sqlite3.Connection,
        owner: str,
        limits: OwnerLimits,
        written: list[TaskWritten],
        now: datetime,
    ) -> None:
        """Record the new tasks' creations, then raise `LimitReached` if the writes break a
        limit (the transaction holds the write lock: no one else writes meanwhile)."""
        made = rated_creations(limits, written)
        recent: dict[str, int] = {}
        if made:
            minute_ago = _us(now - timedelta(minutes=1))
            conn.execute(
                "DELETE FROM task_creations WHERE owner = ? AND created_at <= ?",
                (owner, minute_ago),
            )
            conn.executemany(
                "INSERT INTO task_creations (owner, kind, created_at) VALUES (?, ?, ?)",
                [(owner, kind, _us(now)) for kind, count in made.items() for _ in range(count)],
            )
            recent = {
                kind: conn.execute(
                    "SELECT count(*) FROM task_creations WHERE owner = ? AND kind = ?",
                    (owner, kind),
                ).fetchone()[0]
                for kind in made
            }
        broken = over_limits(limits, self._live_tasks(conn, owner), written, recent)
        if broken is not None:
            raise broken

    @staticmethod
    def _live_tasks(conn: sqlite3.Connection, owner: str) -> int:
        """The owner's active and paused tasks, as `live_tasks` counts them (schema 13)."""
        row = conn.execute("SELECT live FROM live_tasks WHERE owner = ?", (owner,)).fetchone()
        return 0 if row is None else int(row[0])

    def _write_task(
        self,
        conn: sqlite3.Connection,
        owner: str,
        write: TaskWrite,
        now: datetime,
        pending: list[EventDraft | EndMark],
    ) -> TaskWritten:
        if isinstance(write, NewTask):
            return self._insert_task(conn, owner, write, now)
        if isinstance(write, TaskUpdate):
            task = self._update_task_on(conn, owner, write, now)
            if "status" in write.changes and task.status == TaskStatus.EXPIRED:
                pending.append(EndMark(task, now))
            return TaskWritten(task)
        return self._delete_task_on(conn, owner, write.task_id)

    def _insert_task(
        self, conn: sqlite3.Connection, owner: str, write: NewTask, now: datetime
    ) -> TaskWritten:
        task = write.task
        if task.owner != owner:
            raise ValueError(f"task {task.id} belongs to {task.owner!r}, not {owner!r}")
        if task.idempotency_key is not None:
            found = conn.execute(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE owner = ? AND idempotency_key = ?",
                (owner, task.idempotency_key),
            ).fetchone()
            if found is not None:
                return TaskWritten(_task_from_row(found))
        row = _task_to_row(task)
        try:
            conn.execute(_INSERT_TASK, row)
        except sqlite3.IntegrityError as exc:
            if "tasks.id" not in str(exc):
                raise
            raise Conflict(
                f"a task with id {task.id!r} exists already; choose another id"
            ) from None
        if write.callback_secret is not None:
            add_secret_on(conn, task.id, write.callback_secret, now, now)
        return TaskWritten(task, created=True)

    def _update_task_on(
        self, conn: sqlite3.Connection, owner: str | None, write: TaskUpdate, now: datetime
    ) -> Task:
        changes = write.changes
        unknown = set(changes) - set(_UPDATABLE)
        if unknown:
            raise ValueError(f"a task update cannot set {sorted(unknown)}")
        current = _task_from_row(self._task_row(conn, owner, write.task_id))
        if write.seen_status is not None and current.status != write.seen_status:
            raise Conflict(
                f"task {current.id} changed meanwhile: it is now {current.status}, not "
                f"{write.seen_status}; read it again and retry"
            )
        sets = [f"{name} = ?" for name in changes] + ["updated_at = ?"]
        values = [_UPDATABLE[name](value) for name, value in changes.items()] + [_us(now)]
        conn.execute(f"UPDATE tasks SET {', '.join(sets)} WHERE id = ?", (*values, current.id))
        if write.callback_secret is not None:
            retire = write.retire_secrets_at or now
            add_secret_on(conn, current.id, write.callback_secret, now, retire)
        return _task_from_row(self._task_row(conn, owner, current.id))

    def _delete_task_on(
        self, conn: sqlite3.Connection, owner: str | None, task_id: str
    ) -> TaskWritten:
        task = _task_from_row(self._task_row(conn, owner, task_id))
        running = tuple(
            r[0]
            for r in conn.execute(
                "SELECT id FROM runs WHERE task_id = ? AND status = 'running'", (task_id,)
            )
        )
        conn.execute(
            "DELETE FROM attempts WHERE run_id IN (SELECT id FROM runs WHERE task_id = ?)",
            (task_id,),
        )
        conn.execute("DELETE FROM runs WHERE task_id = ?", (task_id,))
        conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
        # Pending deliveries keep their signing secrets until they are done.
        conn.execute(
            "DELETE FROM callback_secrets WHERE task_id = ? AND NOT EXISTS (SELECT 1 FROM "
            "deliveries d WHERE d.task_id = ? AND d.status = 'pending')",
            (task_id, task_id),
        )
        live = task.status in (TaskStatus.ACTIVE, TaskStatus.PAUSED)
        return TaskWritten(None, running=running, was_live=live)
