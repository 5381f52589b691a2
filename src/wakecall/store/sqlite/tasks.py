"""The SQLite store's tasks: reading and listing them, and the announcement of an ended task
once its last run is done."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from wakecall.errors import TaskNotFound
from wakecall.models import Event, Task, TaskStatus
from wakecall.store.plans import EndMark, EventDraft, end_marks, place_ends
from wakecall.store.sqlite.connection import _DRAFTS, StoreConnection
from wakecall.store.sqlite.rows import _TASK_COLUMNS, _task_from_row


class TaskMethods(StoreConnection):
    """The task methods of `SQLiteStore`."""

    async def get_task(self, owner: str | None, task_id: str) -> Task:
        def get_task_on(conn: sqlite3.Connection) -> Task:
            return _task_from_row(self._task_row(conn, owner, task_id))

        return await self._read(get_task_on)

    @staticmethod
    def _task_row(conn: sqlite3.Connection, owner: str | None, task_id: str) -> Sequence[Any]:
        if owner is None:
            row = conn.execute(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = ?", (task_id,)
            ).fetchone()
        else:
            row = conn.execute(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = ? AND owner = ?", (task_id, owner)
            ).fetchone()
        if row is None:
            raise TaskNotFound(task_id)
        return row

    async def list_tasks(
        self,
        owner: str | None,
        *,
        status: TaskStatus | None = None,
        kind: str | None = None,
        name_contains: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[Task]:
        where: list[str] = []
        args: list[Any] = []
        if owner is not None:
            where.append("owner = ?")
            args.append(owner)
        if status is not None:
            where.append("status = ?")
            args.append(str(status))
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        if name_contains:
            where.append("instr(lower(name), lower(?)) > 0")
            args.append(name_contains)
        for key, value in (metadata or {}).items():
            where.append("json_extract(metadata, ?) IS NOT NULL")
            where.append("json_extract(metadata, ?) = json_extract(?, '$')")
            path = "$." + json.dumps(str(key))
            args.extend([path, path, json.dumps(value)])
        if after is not None:
            where.append("id > ?")
            args.append(after)
        sql = f"SELECT {_TASK_COLUMNS} FROM tasks"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id LIMIT ?"
        args.append(limit)
        rows = await self._read(lambda c: c.execute(sql, args).fetchall())
        return [_task_from_row(r) for r in rows]

    @staticmethod
    def _mark_ends_announced(conn: sqlite3.Connection, task_ids: Sequence[str]) -> set[str]:
        """Of these tasks, those that have ended as expired, have no unfinished run left and
        were not announced yet; they are marked announced here, so each is announced once."""
        announced = set()
        for task_id in task_ids:
            changed = conn.execute(
                "UPDATE tasks SET end_announced = 1 WHERE id = ? AND status = 'expired' "
                "AND end_announced = 0 AND NOT EXISTS (SELECT 1 FROM runs "
                "WHERE task_id = ? AND status IN ('queued', 'running'))",
                (task_id, task_id),
            ).rowcount
            if changed:
                announced.add(task_id)
        return announced

    def _append_with_ends(
        self, conn: sqlite3.Connection, pending: Sequence[EventDraft | EndMark]
    ) -> list[Event]:
        """Append `pending` in order, with the `task.expired` of each task marked as ended
        that is announced now (see `plans.place_ends`)."""
        announced = self._mark_ends_announced(conn, end_marks(pending))
        return self._append_drafts(conn, place_ends(pending, announced, _DRAFTS))
