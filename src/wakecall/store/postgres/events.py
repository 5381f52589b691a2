"""The PostgreSQL store's event log: appending events (with their callback deliveries) at the
end of a transaction, in cursor order; reading the log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from wakecall.models import Event
from wakecall.store.base import NewEvent
from wakecall.store.plans import EventDraft
from wakecall.store.postgres.hints import Hints
from wakecall.store.postgres.locks import _LOCK_CLASS
from wakecall.store.postgres.pending import _DRAFTS, _written
from wakecall.store.postgres.rows import _event_from_row
from wakecall.store.postgres.sql import _APPEND_EVENTS_SQL, _EVENT_COLUMNS, _UNFINISHED
from wakecall.tracecontext import trace_columns


class EventMethods(Hints):
    """The event methods of `PostgresStore`."""

    @staticmethod
    async def _mark_ends_announced(conn: asyncpg.Connection, task_ids: Sequence[str]) -> set[str]:
        """Of these tasks, those that have ended as expired, have no unfinished run left and
        were not announced yet; they are marked announced here, so each is announced once."""
        if not task_ids:
            return set()
        rows = await conn.fetch(
            "UPDATE tasks t SET end_announced = true "
            "WHERE t.id = ANY($1::text[]) AND t.status = 'expired' AND NOT t.end_announced "
            f"AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.task_id = t.id AND r.{_UNFINISHED}) "
            "RETURNING t.id",
            list(task_ids),
        )
        return {r["id"] for r in rows}

    async def _append_events(
        self, conn: asyncpg.Connection, pending: Sequence[EventDraft], *, due: bool = False
    ) -> list[Event]:
        """Append events in the given order (and the callback deliveries they create), as the
        last write of the transaction: the events lock is held until commit, so cursors commit
        in order (see the module docstring). The same statement notifies the other nodes of
        the owners that have new events (and, with `due`, that something may be due)."""
        if not pending:
            if due:
                await self._hint(conn, due=True)
            return []
        cursors = await conn.fetch(_APPEND_EVENTS_SQL, *self._events_args(pending, due))
        return _written(pending, cursors)

    def _events_args(self, pending: Sequence[EventDraft], due: bool) -> list[Any]:
        return [
            _LOCK_CLASS,
            self._events_lock,
            len(pending),
            [p.owner for p in pending],
            [str(p.event.type) for p in pending],
            [p.event.task_id for p in pending],
            [p.event.run_id for p in pending],
            [p.created_at for p in pending],
            [p.payload for p in pending],
            [p.delivery_id for p in pending],
            [p.url for p in pending],
            [p.body for p in pending],
            self.channel,
            self._hint_payload(due=due, owners=[p.owner for p in pending]),
            [trace_columns(p.trace)[0] for p in pending],
            [trace_columns(p.trace)[1] for p in pending],
        ]

    async def list_events(self, owner: str, *, after: int = 0, limit: int = 100) -> list[Event]:
        rows = await self._call(
            lambda c: c.fetch(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE owner = $1 AND cursor > $2 "
                "ORDER BY cursor LIMIT $3",
                owner,
                after,
                limit,
            )
        )
        return [_event_from_row(r) for r in rows]

    async def append_events(self, now: datetime, events: Sequence[NewEvent]) -> list[Event]:
        async def append_events_on(conn: asyncpg.Connection) -> list[Event]:
            rows = await conn.fetch(
                "SELECT id, owner, callback_url FROM tasks WHERE id = ANY($1::text[])",
                list({e.task_id for e in events if e.task_id}),
            )
            owners = {r["id"]: (r["owner"], r["callback_url"]) for r in rows}
            pending = [
                _DRAFTS.draft(owners[e.task_id][0], e, now, owners[e.task_id][1])
                for e in events
                if e.task_id in owners
            ]
            return await self._append_events(conn, pending)

        return await self._tx(append_events_on)

    async def latest_cursor(self, owner: str) -> int:
        value = await self._call(
            lambda c: c.fetchval("SELECT max(cursor) FROM events WHERE owner = $1", owner)
        )
        return int(value or 0)
