"""The PostgreSQL store's tasks: create, read, list, change, delete."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import asyncpg

from wakecall.errors import TaskNotFound
from wakecall.models import Task, TaskStatus
from wakecall.store.postgres.events import EventMethods
from wakecall.store.postgres.rows import _task_from_row
from wakecall.store.postgres.sql import _TASK_COLUMNS


class TaskMethods(EventMethods):
    """The task methods of `PostgresStore`."""

    async def get_task(self, owner: str | None, task_id: str) -> Task:
        async def get_task_on(conn: asyncpg.Connection) -> Task:
            return _task_from_row(await self._task_row(conn, owner, task_id))

        return await self._call(get_task_on)

    @staticmethod
    async def _task_row(
        conn: asyncpg.Connection, owner: str | None, task_id: str, lock: str = ""
    ) -> asyncpg.Record:
        if owner is None:
            row = await conn.fetchrow(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = $1 {lock}", task_id
            )
        else:
            row = await conn.fetchrow(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = $1 AND owner = $2 {lock}",
                task_id,
                owner,
            )
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

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if owner is not None:
            where.append(f"owner = {arg(owner)}")
        if status is not None:
            where.append(f"status = {arg(str(status))}")
        if kind is not None:
            where.append(f"kind = {arg(kind)}")
        if name_contains:
            where.append(f"strpos(lower(name), lower({arg(name_contains)})) > 0")
        for key, value in (metadata or {}).items():
            where.append(f"metadata -> {arg(str(key))} = {arg(json.dumps(value))}::jsonb")
        if after is not None:
            where.append(f"id > {arg(after)}")
        sql = f"SELECT {_TASK_COLUMNS} FROM tasks"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY id LIMIT {arg(limit)}"
        rows = await self._call(lambda c: c.fetch(sql, *args))
        return [_task_from_row(r) for r in rows]
