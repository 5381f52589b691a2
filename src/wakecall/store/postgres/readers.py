"""The PostgreSQL store's readers: where each reader left off in the event log, how many
events are newer, and how far retention pruned each owner's log."""

from __future__ import annotations

from datetime import datetime

from wakecall.store.postgres.connection import StoreConnection


class ReaderMethods(StoreConnection):
    """The read positions of `PostgresStore`."""

    async def read_position(self, owner: str, client: str) -> int:
        value = await self._call(
            lambda c: c.fetchval(
                "SELECT cursor FROM read_positions WHERE owner = $1 AND client = $2", owner, client
            )
        )
        return int(value or 0)

    async def reader_news(self, owner: str, client: str) -> tuple[int, int]:
        row = await self._call(
            lambda c: c.fetchrow(
                "SELECT (SELECT max(cursor) FROM events WHERE owner = $1), "
                "(SELECT cursor FROM read_positions WHERE owner = $1 AND client = $2)",
                owner,
                client,
            )
        )
        assert row is not None
        return int(row[0] or 0), int(row[1] or 0)

    async def save_read_position(self, owner: str, client: str, cursor: int, now: datetime) -> int:
        value = await self._write(
            lambda c: c.fetchval(
                "INSERT INTO read_positions (owner, client, cursor, updated_at) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (owner, client) DO UPDATE SET "
                "cursor = greatest(read_positions.cursor, excluded.cursor), "
                "updated_at = excluded.updated_at RETURNING cursor",
                owner,
                client,
                cursor,
                now,
            )
        )
        return int(value)

    async def count_events(self, owner: str, *, after: int, limit: int) -> int:
        value = await self._call(
            lambda c: c.fetchval(
                "SELECT count(*) FROM (SELECT 1 FROM events WHERE owner = $1 AND cursor > $2 "
                "LIMIT $3) found",
                owner,
                after,
                limit,
            )
        )
        return int(value)

    async def event_horizon(self, owner: str) -> int:
        value = await self._call(
            lambda c: c.fetchval(
                "SELECT pruned_through FROM event_horizons WHERE owner = $1", owner
            )
        )
        return int(value or 0)
