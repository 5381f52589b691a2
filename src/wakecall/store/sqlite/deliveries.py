"""The SQLite store's callbacks: signing secrets and the deliveries of events to callback URLs."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta

from wakecall.errors import NotFound
from wakecall.models import Delivery, DeliveryStatus
from wakecall.store.base import DeliveryOutcome
from wakecall.store.sqlite.connection import StoreConnection
from wakecall.store.sqlite.rows import (
    _DELIVERY_COLUMNS,
    _delivery_from_row,
    _dt,
    _newest_first,
    _us,
)
from wakecall.store.sqlite.task_writes import add_secret_on


class DeliveryMethods(StoreConnection):
    """The callback methods of `SQLiteStore`."""

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
        marks = ", ".join("?" * len(ids))
        rows = await self._read(
            lambda c: c.execute(
                f"SELECT task_id, secret FROM callback_secrets WHERE task_id IN ({marks}) "
                "AND (retires_at IS NULL OR retires_at > ?) ORDER BY task_id, created_at DESC",
                (*ids, _us(now)),
            ).fetchall()
        )
        found: dict[str, list[str]] = {}
        for task_id, secret in rows:
            found.setdefault(task_id, []).append(secret)
        return found

    async def claim_deliveries(
        self, node: str, now: datetime, limit: int, lease: timedelta
    ) -> list[Delivery]:
        now_us, until_us = _us(now), _us(now + lease)

        def claim_deliveries_on(conn: sqlite3.Connection) -> list[Delivery]:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ? "
                    "AND (claimed_by IS NULL OR lease_expires_at < ?) "
                    "ORDER BY next_attempt_at, id LIMIT ?",
                    (now_us, now_us, limit),
                )
            ]
            if not ids:
                return []
            marks = ", ".join("?" * len(ids))
            conn.execute(
                f"UPDATE deliveries SET claimed_by = ?, lease_expires_at = ? WHERE id IN ({marks})",
                (node, until_us, *ids),
            )
            rows = conn.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE id IN ({marks})", ids
            ).fetchall()
            by_id = {r[0]: _delivery_from_row(r) for r in rows}
            return [by_id[i] for i in ids]

        return await self._tx(claim_deliveries_on, background=True)

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
        if not outcomes:
            return []
        rows = []
        for o in outcomes:
            if o.delivered:
                status, due = "delivered", None
            elif o.retry_at is not None:
                status, due = "pending", _us(o.retry_at)
            else:
                status, due = "failed", None
            delivered_at = _us(o.at) if o.delivered else None
            rows.append((status, due, o.status_code, o.error, delivered_at, o.delivery_id, node))

        def finish_deliveries_on(conn: sqlite3.Connection) -> list[Delivery | None]:
            found: list[Delivery | None] = []
            for args in rows:
                changed = conn.execute(
                    "UPDATE deliveries SET status = ?, attempts = attempts + 1, "
                    "next_attempt_at = ?, last_status = ?, last_error = ?, delivered_at = ?, "
                    "claimed_by = NULL, lease_expires_at = NULL "
                    "WHERE id = ? AND claimed_by = ? AND status = 'pending' "
                    f"RETURNING {_DELIVERY_COLUMNS}",
                    args,
                ).fetchall()
                found.append(_delivery_from_row(changed[0]) if changed else None)
            return found

        return await self._tx(finish_deliveries_on, background=True)

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
        rows = await self._read(lambda c: c.execute(sql, args).fetchall())
        return [_delivery_from_row(r) for r in rows]

    async def redeliver(self, owner: str | None, delivery_id: str, now: datetime) -> Delivery:
        def redeliver_on(conn: sqlite3.Connection) -> Delivery:
            row = conn.execute(
                "SELECT owner FROM deliveries WHERE id = ?", (delivery_id,)
            ).fetchone()
            if row is None or (owner is not None and row[0] != owner):
                raise NotFound(f"no delivery with id {delivery_id!r}; list_deliveries shows them")
            conn.execute(
                "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, "
                "claimed_by = NULL, lease_expires_at = NULL WHERE id = ?",
                (_us(now), delivery_id),
            )
            found = conn.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE id = ?", (delivery_id,)
            ).fetchone()
            return _delivery_from_row(found)

        return await self._tx(redeliver_on)

    async def next_delivery_due_at(self) -> datetime | None:
        value = await self._read(
            lambda c: c.execute(
                "SELECT min(next_attempt_at) FROM deliveries WHERE status = 'pending'"
            ).fetchone()[0]
        )
        return _dt(value)
