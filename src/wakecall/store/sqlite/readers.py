"""The SQLite store's readers: where each reader left off in the event log, how many events
are newer, and how far retention pruned each owner's log."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from wakecall.store.sqlite.connection import StoreConnection
from wakecall.store.sqlite.rows import _us


class ReaderMethods(StoreConnection):
    """The read positions of `SQLiteStore`."""

    async def read_position(self, owner: str, client: str) -> int:
        row = await self._read(
            lambda c: c.execute(
                "SELECT cursor FROM read_positions WHERE owner = ? AND client = ?", (owner, client)
            ).fetchone()
        )
        return int(row[0]) if row is not None else 0

    async def reader_news(self, owner: str, client: str) -> tuple[int, int]:
        row = await self._read(
            lambda c: c.execute(
                "SELECT (SELECT max(cursor) FROM events WHERE owner = ?), "
                "(SELECT cursor FROM read_positions WHERE owner = ? AND client = ?)",
                (owner, owner, client),
            ).fetchone()
        )
        return int(row[0] or 0), int(row[1] or 0)

    async def save_read_position(self, owner: str, client: str, cursor: int, now: datetime) -> int:
        def save_on(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "INSERT INTO read_positions (owner, client, cursor, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (owner, client) DO UPDATE SET "
                "cursor = max(cursor, excluded.cursor), updated_at = excluded.updated_at "
                "RETURNING cursor",
                (owner, client, cursor, _us(now)),
            ).fetchone()
            return int(row[0])

        return await self._tx(save_on)

    async def count_events(self, owner: str, *, after: int, limit: int) -> int:
        row = await self._read(
            lambda c: c.execute(
                "SELECT count(*) FROM (SELECT 1 FROM events WHERE owner = ? AND cursor > ? "
                "LIMIT ?)",
                (owner, after, limit),
            ).fetchone()
        )
        return int(row[0])

    async def event_horizon(self, owner: str) -> int:
        row = await self._read(
            lambda c: c.execute(
                "SELECT pruned_through FROM event_horizons WHERE owner = ?", (owner,)
            ).fetchone()
        )
        return int(row[0]) if row is not None else 0
