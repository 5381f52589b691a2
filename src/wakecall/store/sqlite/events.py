"""The SQLite store's event log: reading it, appending to it, its latest cursor."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from wakecall.models import Event
from wakecall.store.base import NewEvent
from wakecall.store.sqlite.connection import StoreConnection
from wakecall.store.sqlite.rows import _EVENT_COLUMNS, _event_from_row, _us


class EventMethods(StoreConnection):
    """The event methods of `SQLiteStore`."""

    async def list_events(self, owner: str, *, after: int = 0, limit: int = 100) -> list[Event]:
        rows = await self._read(
            lambda c: c.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE owner = ? AND cursor > ? "
                "ORDER BY cursor LIMIT ?",
                (owner, after, limit),
            ).fetchall()
        )
        return [_event_from_row(r) for r in rows]

    async def append_events(self, now: datetime, events: Sequence[NewEvent]) -> list[Event]:
        now_us = _us(now)

        def append_events_on(conn: sqlite3.Connection) -> list[Event]:
            ids = list(dict.fromkeys(e.task_id for e in events if e.task_id))
            owners = {
                r[0]: (r[1], r[2])
                for r in self._rows_by_id(conn, "SELECT id, owner, callback_url FROM tasks", ids)
            }
            written = []
            for event in events:
                found = owners.get(event.task_id or "")
                if found is not None:
                    written.append(self._append_event(conn, found[0], event, now_us, found[1]))
            return written

        return await self._tx(append_events_on)

    async def latest_cursor(self, owner: str) -> int:
        value = await self._read(
            lambda c: c.execute(
                "SELECT max(cursor) FROM events WHERE owner = ?", (owner,)
            ).fetchone()[0]
        )
        return int(value or 0)
