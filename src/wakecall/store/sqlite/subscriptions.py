"""The SQLite store's MCP Events webhook subscriptions (and the deliveries made for them) and
the Tasks extension's handles."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from wakecall.errors import LimitReached
from wakecall.models import Delivery
from wakecall.models.subscriptions import (
    Subscription,
    SubscriptionRoute,
    ToolTask,
    subscription_route,
)
from wakecall.store.base import NewSubscriptionDelivery
from wakecall.store.sqlite.connection import StoreConnection
from wakecall.store.sqlite.rows import _DELIVERY_COLUMNS, _delivery_from_row, _dt, _dt_req, _us

_SUB_COLUMNS = (
    "id, owner, url, name, arguments, secret, old_secret, old_secret_until, cursor, "
    "acked_through, pending_delivery, active, refresh_before, created_at, updated_at, "
    "verified_at, last_delivery_at, last_error, failed_since, suspended_at"
)
_S_COLUMNS = ", ".join("s." + c.strip() for c in _SUB_COLUMNS.split(","))
_D_COLUMNS = ", ".join("d." + c.strip() for c in _DELIVERY_COLUMNS.split(","))
_SUB_WIDTH = len(_SUB_COLUMNS.split(","))


def _sub_from_row(row: Sequence[Any]) -> Subscription:
    return Subscription(
        id=row[0],
        owner=row[1],
        url=row[2],
        name=row[3],
        arguments=json.loads(row[4]),
        secret=row[5],
        old_secret=row[6],
        old_secret_until=_dt(row[7]),
        cursor=row[8],
        acked_through=row[9],
        pending_delivery=row[10],
        active=bool(row[11]),
        refresh_before=_dt(row[12]),
        created_at=_dt_req(row[13]),
        updated_at=_dt_req(row[14]),
        verified_at=_dt_req(row[15]),
        last_delivery_at=_dt(row[16]),
        last_error=row[17],
        failed_since=_dt(row[18]),
        suspended_at=_dt(row[19]),
    )


def _arguments_text(arguments: dict[str, Any]) -> str:
    return json.dumps(arguments, sort_keys=True, separators=(",", ":"))


class SubscriptionMethods(StoreConnection):
    """The webhook subscriptions and task handles of `SQLiteStore`."""

    async def save_subscription(
        self,
        sub: Subscription,
        now: datetime,
        *,
        secret_grace: timedelta,
        max_per_owner: int,
    ) -> tuple[Subscription, bool]:
        def save_on(conn: sqlite3.Connection) -> tuple[Subscription, bool]:
            found = conn.execute(
                f"SELECT {_SUB_COLUMNS} FROM event_subscriptions WHERE id = ? AND owner = ?",
                (sub.id, sub.owner),
            ).fetchone()
            if found is None:
                held = conn.execute(
                    "SELECT count(*) FROM event_subscriptions WHERE owner = ?", (sub.owner,)
                ).fetchone()[0]
                if held >= max_per_owner:
                    raise LimitReached(
                        f"you hold {held} event subscriptions, the most allowed; "
                        "events/unsubscribe one you no longer need"
                    )
                _drop_pending(conn, sub.id)  # an ended subscription's farewell
                conn.execute(
                    f"INSERT INTO event_subscriptions ({_SUB_COLUMNS}) "
                    f"VALUES ({', '.join('?' * _SUB_WIDTH)})",
                    _sub_values(sub),
                )
                return sub, True
            old = _sub_from_row(found)
            rotated = old.secret != sub.secret
            row = conn.execute(
                "UPDATE event_subscriptions SET secret = ?, old_secret = ?, "
                "old_secret_until = ?, refresh_before = ?, updated_at = ?, active = 1, "
                f"suspended_at = NULL WHERE id = ? RETURNING {_SUB_COLUMNS}",
                (
                    sub.secret,
                    old.secret if rotated else old.old_secret,
                    _us(now + secret_grace) if rotated else _us_or_none(old.old_secret_until),
                    _us_or_none(sub.refresh_before),
                    _us(now),
                    sub.id,
                ),
            ).fetchone()
            return _sub_from_row(row), False

        return await self._tx(save_on)

    async def get_subscription(self, owner: str, subscription_id: str) -> Subscription | None:
        row = await self._read(
            lambda c: c.execute(
                f"SELECT {_SUB_COLUMNS} FROM event_subscriptions WHERE id = ? AND owner = ?",
                (subscription_id, owner),
            ).fetchone()
        )
        return None if row is None else _sub_from_row(row)

    async def endpoint_verified(self, owner: str, url: str) -> bool:
        row = await self._read(
            lambda c: c.execute(
                "SELECT 1 FROM event_subscriptions WHERE owner = ? AND url = ? LIMIT 1",
                (owner, url),
            ).fetchone()
        )
        return row is not None

    async def delete_subscription(self, owner: str | None, subscription_id: str) -> bool:
        def delete_on(conn: sqlite3.Connection) -> bool:
            gone = conn.execute(
                "DELETE FROM event_subscriptions WHERE id = ? AND (? IS NULL OR owner = ?)",
                (subscription_id, owner, owner),
            ).rowcount
            if gone:
                _drop_pending(conn, subscription_id)
            return bool(gone)

        return await self._tx(delete_on)

    async def subscriptions_to_feed(
        self, now: datetime, limit: int
    ) -> list[tuple[Subscription, Delivery | None]]:
        rows = await self._read(
            lambda c: c.execute(
                f"SELECT {_S_COLUMNS}, {_D_COLUMNS} FROM event_subscriptions s "
                "LEFT JOIN deliveries d ON d.id = s.pending_delivery "
                "WHERE s.active = 1 AND (s.refresh_before IS NULL OR s.refresh_before > ?) "
                "AND (s.pending_delivery IS NULL OR d.id IS NULL OR d.status != 'pending') "
                "ORDER BY s.id LIMIT ?",
                (_us(now), limit),
            ).fetchall()
        )
        found = []
        for row in rows:
            last = row[_SUB_WIDTH:]
            found.append(
                (
                    _sub_from_row(row[:_SUB_WIDTH]),
                    None if last[0] is None else _delivery_from_row(last),
                )
            )
        return found

    async def advance_subscription(
        self,
        before: Subscription,
        after: Subscription,
        delivery: NewSubscriptionDelivery | None = None,
        *,
        now: datetime,
    ) -> bool:
        def advance_on(conn: sqlite3.Connection) -> bool:
            changed = conn.execute(
                "UPDATE event_subscriptions SET cursor = ?, acked_through = ?, "
                "pending_delivery = ?, active = ?, last_delivery_at = ?, last_error = ?, "
                "failed_since = ?, suspended_at = ? "
                "WHERE id = ? AND cursor = ? AND pending_delivery IS ?",
                (
                    after.cursor,
                    after.acked_through,
                    after.pending_delivery,
                    int(after.active),
                    _us_or_none(after.last_delivery_at),
                    after.last_error,
                    _us_or_none(after.failed_since),
                    _us_or_none(after.suspended_at),
                    before.id,
                    before.cursor,
                    before.pending_delivery,
                ),
            ).rowcount
            if changed and delivery is not None:
                _insert_delivery(conn, after, delivery, now)
            return bool(changed)

        return await self._tx(advance_on)

    async def subscriptions_to_end(
        self, now: datetime, suspended_before: datetime, limit: int
    ) -> list[Subscription]:
        rows = await self._read(
            lambda c: c.execute(
                f"SELECT {_SUB_COLUMNS} FROM event_subscriptions WHERE refresh_before <= ? "
                "OR (refresh_before IS NULL AND active = 0 AND suspended_at <= ?) "
                "ORDER BY id LIMIT ?",
                (_us(now), _us(suspended_before), limit),
            ).fetchall()
        )
        return [_sub_from_row(row) for row in rows]

    async def end_subscription(
        self, sub: Subscription, farewell: NewSubscriptionDelivery | None, *, now: datetime
    ) -> bool:
        def end_on(conn: sqlite3.Connection) -> bool:
            gone = conn.execute(
                "DELETE FROM event_subscriptions WHERE id = ? AND updated_at = ? "
                "AND active = ? AND refresh_before IS ?",
                (sub.id, _us(sub.updated_at), int(sub.active), _us_or_none(sub.refresh_before)),
            ).rowcount
            if not gone:
                return False
            _drop_pending(conn, sub.id)
            if farewell is not None:
                _insert_delivery(conn, sub, farewell, now)
            return True

        return await self._tx(end_on)

    async def subscription_routes(
        self, delivery_ids: Sequence[str], now: datetime
    ) -> dict[str, SubscriptionRoute]:
        ids = list(dict.fromkeys(delivery_ids))
        if not ids:
            return {}
        rows = await self._read(
            lambda c: self._rows_by_id(
                c,
                "SELECT d.id, d.subscription_id, d.message_id, d.secret, s.secret, "
                "s.old_secret, s.old_secret_until FROM deliveries d "
                "LEFT JOIN event_subscriptions s ON s.id = d.subscription_id",
                ids,
                column="d.id",
            )
        )
        return {
            row[0]: subscription_route(
                row[1], row[2] or row[0], row[3], row[4], row[5], _dt(row[6]), now
            )
            for row in rows
            if row[1] is not None
        }

    async def create_tool_task(self, task: ToolTask) -> None:
        def create_on(conn: sqlite3.Connection) -> None:
            conn.execute(
                "DELETE FROM tool_tasks WHERE owner = ? AND expires_at <= ?",
                (task.owner, _us(task.created_at)),
            )
            conn.execute(
                "INSERT INTO tool_tasks (id, owner, run_id, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (task.id, task.owner, task.run_id, _us(task.created_at), _us(task.expires_at)),
            )

        await self._tx(create_on)

    async def get_tool_task(self, owner: str, task_id: str, now: datetime) -> ToolTask | None:
        row = await self._read(
            lambda c: c.execute(
                "SELECT id, owner, run_id, created_at, expires_at FROM tool_tasks "
                "WHERE id = ? AND owner = ? AND expires_at > ?",
                (task_id, owner, _us(now)),
            ).fetchone()
        )
        if row is None:
            return None
        return ToolTask(row[0], row[1], row[2], _dt_req(row[3]), _dt_req(row[4]))


def _us_or_none(value: datetime | None) -> int | None:
    return None if value is None else _us(value)


def _drop_pending(conn: sqlite3.Connection, subscription_id: str) -> None:
    conn.execute(
        "DELETE FROM deliveries WHERE subscription_id = ? AND status = 'pending'",
        (subscription_id,),
    )


def _insert_delivery(
    conn: sqlite3.Connection, sub: Subscription, delivery: NewSubscriptionDelivery, now: datetime
) -> None:
    """`delivery` pending for `sub`, due `now`."""
    conn.execute(
        "INSERT INTO deliveries (id, owner, task_id, event_cursor, event_type, url, body, "
        "status, attempts, next_attempt_at, created_at, subscription_id, message_id, secret) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?, ?)",
        (
            delivery.id,
            sub.owner,
            delivery.task_id,
            delivery.event_cursor,
            delivery.event_type,
            sub.url,
            delivery.body,
            _us(now),
            _us(now),
            sub.id,
            delivery.message_id,
            delivery.secret,
        ),
    )


def _sub_values(sub: Subscription) -> tuple[Any, ...]:
    return (
        sub.id,
        sub.owner,
        sub.url,
        sub.name,
        _arguments_text(sub.arguments),
        sub.secret,
        sub.old_secret,
        _us_or_none(sub.old_secret_until),
        sub.cursor,
        sub.acked_through,
        sub.pending_delivery,
        int(sub.active),
        _us_or_none(sub.refresh_before),
        _us(sub.created_at),
        _us(sub.updated_at),
        _us(sub.verified_at),
        _us_or_none(sub.last_delivery_at),
        sub.last_error,
        _us_or_none(sub.failed_since),
        _us_or_none(sub.suspended_at),
    )
