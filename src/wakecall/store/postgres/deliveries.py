"""The PostgreSQL store's callbacks: signing secrets and the deliveries of events to callback
URLs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from wakecall.errors import NotFound
from wakecall.models import Delivery, DeliveryStatus
from wakecall.store.base import DeliveryOutcome
from wakecall.store.postgres.hints import Hints
from wakecall.store.postgres.rows import _delivery_from_row, _no_nul
from wakecall.store.postgres.sql import _DELIVERY_COLUMNS, _cols, _newest_first
from wakecall.store.postgres.task_writes import add_secret_on


class DeliveryMethods(Hints):
    """The callback methods of `PostgresStore`."""

    async def add_callback_secret(
        self, task_id: str, secret: str, now: datetime, retire_others_at: datetime | None
    ) -> None:
        retire = retire_others_at or now
        await self._tx(lambda conn: add_secret_on(conn, task_id, secret, now, retire))

    async def callback_secrets(self, task_id: str, now: datetime) -> list[str]:
        return (await self.callback_secrets_of([task_id], now)).get(task_id, [])

    async def callback_secrets_of(
        self, task_ids: Sequence[str], now: datetime
    ) -> dict[str, list[str]]:
        ids = sorted(set(task_ids))
        if not ids:
            return {}
        rows = await self._call(
            lambda c: c.fetch(
                "SELECT task_id, secret FROM callback_secrets WHERE task_id = ANY($1::text[]) "
                "AND (retires_at IS NULL OR retires_at > $2) ORDER BY task_id, created_at DESC",
                ids,
                now,
            )
        )
        found: dict[str, list[str]] = {}
        for r in rows:
            found.setdefault(r["task_id"], []).append(r["secret"])
        return found

    async def claim_deliveries(
        self, node: str, now: datetime, limit: int, lease: timedelta
    ) -> list[Delivery]:
        sql = (
            "WITH due AS ("
            "  SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1"
            "  AND (claimed_by IS NULL OR lease_expires_at < $1)"
            "  ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED"
            ") "
            "UPDATE deliveries d SET claimed_by = $3, lease_expires_at = $4 FROM due "
            f"WHERE d.id = due.id RETURNING {', '.join('d.' + c for c in _cols(_DELIVERY_COLUMNS))}"
        )

        async def claim_deliveries_on(conn: asyncpg.Connection) -> list[Delivery]:
            rows = await conn.fetch(sql, now, limit, node, now + lease)
            found = [_delivery_from_row(r) for r in rows]
            found.sort(key=lambda d: (d.next_attempt_at or now, d.id))
            return found

        return await self._write(claim_deliveries_on)

    async def finish_delivery(
        self,
        node: str,
        delivery_id: str,
        now: datetime,
        *,
        delivered: bool,
        retry_at: datetime | None,
        status_code: int | None,
        error: str | None,
    ) -> Delivery | None:
        outcome = DeliveryOutcome(delivery_id, now, delivered, retry_at, status_code, error)
        (found,) = await self.finish_deliveries(node, [outcome])
        return found

    async def finish_deliveries(
        self, node: str, outcomes: Sequence[DeliveryOutcome]
    ) -> list[Delivery | None]:
        # One statement for the batch. An id given twice counts once, at its first position
        # (an UPDATE … FROM changes each row once).
        first: dict[str, DeliveryOutcome] = {}
        for o in outcomes:
            first.setdefault(o.delivery_id, o)
        if not first:
            return []
        columns: tuple[list[Any], ...] = ([], [], [], [], [], [])
        for o in first.values():
            if o.delivered:
                status, due = "delivered", None
            elif o.retry_at is not None:
                status, due = "pending", o.retry_at
            else:
                status, due = "failed", None
            delivered_at = o.at if o.delivered else None
            values = (o.delivery_id, status, due, o.status_code, _no_nul(o.error), delivered_at)
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        rows = await self._write(
            lambda c: c.fetch(
                "UPDATE deliveries d SET status = u.status, attempts = d.attempts + 1, "
                "next_attempt_at = u.due, last_status = u.code, last_error = u.error, "
                "delivered_at = u.delivered_at, claimed_by = NULL, lease_expires_at = NULL "
                "FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::int[], $5::text[], "
                "$6::timestamptz[]) AS u(id, status, due, code, error, delivered_at) "
                "WHERE d.id = u.id AND d.claimed_by = $7 AND d.status = 'pending' "
                f"RETURNING {', '.join('d.' + c for c in _cols(_DELIVERY_COLUMNS))}",
                *columns,
                node,
            )
        )
        by_id = {r["id"]: _delivery_from_row(r) for r in rows}
        found: list[Delivery | None] = []
        for o in outcomes:
            found.append(by_id.pop(o.delivery_id, None))
        return found

    async def list_deliveries(
        self,
        owner: str | None,
        *,
        status: DeliveryStatus | None = None,
        task_id: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> list[Delivery]:
        filters = {"owner": owner, "task_id": task_id, "status": status and str(status)}
        sql, args = _newest_first(_DELIVERY_COLUMNS, "deliveries", filters, before, limit)
        rows = await self._call(lambda c: c.fetch(sql, *args))
        return [_delivery_from_row(r) for r in rows]

    async def redeliver(self, owner: str | None, delivery_id: str, now: datetime) -> Delivery:
        owner_check = "" if owner is None else " AND owner = $3"
        args = (now, delivery_id) if owner is None else (now, delivery_id, owner)

        async def redeliver_on(conn: asyncpg.Connection) -> asyncpg.Record | None:
            row = await conn.fetchrow(
                "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, "
                "claimed_by = NULL, lease_expires_at = NULL "
                f"WHERE id = $2{owner_check} RETURNING {_DELIVERY_COLUMNS}",
                *args,
            )
            if row is not None:
                await self._hint(conn, due=True)
            return row

        row = await self._write(redeliver_on)
        if row is None:
            raise NotFound(f"no delivery with id {delivery_id!r}; list_deliveries shows them")
        return _delivery_from_row(row)

    async def next_delivery_due_at(self) -> datetime | None:
        value: datetime | None = await self._call(
            lambda c: c.fetchval(
                "SELECT min(next_attempt_at) FROM deliveries WHERE status = 'pending'"
            )
        )
        return value
