"""The SQLite store's tasks: create, read, list, change, delete, and the announcement of an
ended task once its last run is done."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from wakecall.errors import TaskNotFound
from wakecall.models import Event, EventType, Task, TaskStatus, task_event_payload
from wakecall.store.base import NewEvent
from wakecall.store.sqlite.connection import StoreConnection
from wakecall.store.sqlite.rows import _TASK_COLUMNS, _task_from_row, _us


class TaskMethods(StoreConnection):
    """The task methods of `SQLiteStore`."""

    async def get_task(self, owner: str | None, task_id: str) -> Task:
        def get_task_on(conn: sqlite3.Connection) -> Task:
            return _task_from_row(self._task_row(conn, owner, task_id))

        return await self._call(get_task_on)

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
        rows = await self._call(lambda c: c.execute(sql, args).fetchall())
        return [_task_from_row(r) for r in rows]

    def _announce_end_if_idle(
        self, conn: sqlite3.Connection, task: Task, now: datetime
    ) -> Event | None:
        """Append `task.expired` once the ended task has no unfinished run left."""
        if task.status != TaskStatus.EXPIRED:
            return None
        busy = conn.execute(
            "SELECT 1 FROM runs WHERE task_id = ? AND status IN ('queued', 'running') LIMIT 1",
            (task.id,),
        ).fetchone()
        if busy is not None:
            return None
        changed = conn.execute(
            "UPDATE tasks SET end_announced = 1 WHERE id = ? AND end_announced = 0", (task.id,)
        ).rowcount
        if not changed:
            return None
        return self._append_event(
            conn,
            task.owner,
            NewEvent(
                EventType.TASK_EXPIRED, task.id, None, task_event_payload(task, task.end_reason)
            ),
            _us(now),
            task.callback_url,
        )
