"""The PostgreSQL store's tasks: create, read, list, change, delete."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg

from wakecall.errors import StoreError, TaskNotFound
from wakecall.models import Task, TaskStatus
from wakecall.store.postgres.events import EventMethods
from wakecall.store.postgres.pending import _EndMark, _place_ends
from wakecall.store.postgres.rows import _UPDATABLE, _task_from_row, _task_to_row
from wakecall.store.postgres.sql import _TASK_COLUMNS


class TaskMethods(EventMethods):
    """The task methods of `PostgresStore`."""

    async def create_task(self, task: Task) -> tuple[Task, bool]:
        row = _task_to_row(task)
        values = ", ".join(f"${i}" for i in range(1, len(row) + 1))
        insert = f"INSERT INTO tasks ({_TASK_COLUMNS}) VALUES ({values})"
        if task.idempotency_key is None:

            async def plain(conn: asyncpg.Connection) -> None:
                await conn.execute(insert, *row)
                await self._hint(conn, due=True)

            await self._write(plain)
            return task, True
        insert += (
            " ON CONFLICT (owner, idempotency_key) WHERE idempotency_key IS NOT NULL "
            "DO NOTHING RETURNING id"
        )

        async def create_task_on(conn: asyncpg.Connection) -> tuple[Task, bool]:
            # A concurrent create with the same key may commit or vanish between the two
            # statements; a second round settles it.
            for _ in range(3):
                if await conn.fetchval(insert, *row) is not None:
                    await self._hint(conn, due=True)
                    return task, True
                found = await conn.fetchrow(
                    f"SELECT {_TASK_COLUMNS} FROM tasks WHERE owner = $1 AND idempotency_key = $2",
                    task.owner,
                    task.idempotency_key,
                )
                if found is not None:
                    return _task_from_row(found), False
            raise StoreError(
                f"task with idempotency key {task.idempotency_key!r} kept changing; try again"
            )

        return await self._write(create_task_on)

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

    async def count_tasks(self, owner: str, *, active_only: bool = False) -> int:
        sql = "SELECT count(*) FROM tasks WHERE owner = $1"
        if active_only:
            sql += " AND status IN ('active', 'paused')"
        value = await self._call(lambda c: c.fetchval(sql, owner))
        return int(value)

    async def update_task(
        self, owner: str | None, task_id: str, changes: Mapping[str, Any], now: datetime
    ) -> Task:
        unknown = set(changes) - set(_UPDATABLE)
        if unknown:
            raise ValueError(f"update_task cannot set {sorted(unknown)}")
        values = [_UPDATABLE[name](value) for name, value in changes.items()] + [now, task_id]
        sets = [f"{name} = ${i}" for i, name in enumerate(changes, start=1)]
        sets.append(f"updated_at = ${len(changes) + 1}")
        sql = f"UPDATE tasks SET {', '.join(sets)} WHERE id = ${len(changes) + 2}"
        if owner is not None:
            values.append(owner)
            sql += f" AND owner = ${len(values)}"
        sql += f" RETURNING {_TASK_COLUMNS}"

        async def update_task_on(conn: asyncpg.Connection) -> Task:
            row = await conn.fetchrow(sql, *values)
            if row is None:
                raise TaskNotFound(task_id)
            task = _task_from_row(row)
            if "status" in changes and task.status == TaskStatus.EXPIRED:
                announced = await self._mark_ends_announced(conn, [task.id])
                await self._append_events(
                    conn, _place_ends([_EndMark(task, now)], announced), due=True
                )
            else:
                await self._hint(conn, due=True)
            return task

        return await self._tx(update_task_on)
