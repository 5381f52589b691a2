"""The PostgreSQL store's MCP Events webhook subscriptions (and the deliveries made for them)
and the Tasks extension's handles."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from wakecall.errors import LimitReached
from wakecall.models import Delivery
from wakecall.models.subscriptions import (
    Subscription,
    SubscriptionRoute,
    ToolTask,
    subscription_route,
)
from wakecall.store.base import NewSubscriptionDelivery
from wakecall.store.postgres.hints import Hints
from wakecall.store.postgres.rows import _delivery_from_row
from wakecall.store.postgres.sql import _DELIVERY_COLUMNS, _cols

_SUB_COLUMNS = (
    "id, owner, url, name, arguments, secret, old_secret, old_secret_until, cursor, "
    "acked_through, pending_delivery, active, refresh_before, created_at, updated_at, "
    "verified_at, last_delivery_at, last_error, failed_since, suspended_at"
)
_SUB_NAMES = _cols(_SUB_COLUMNS)
_S_COLUMNS = ", ".join("s." + c for c in _SUB_NAMES)
_D_COLUMNS = ", ".join(f"d.{c} AS d_{c}" for c in _cols(_DELIVERY_COLUMNS))


def _sub_from_row(row: Any) -> Subscription:
    values = {name: row[name] for name in _SUB_NAMES}
    values["arguments"] = json.loads(values["arguments"])
    return Subscription(**values)


def _delivery_of(row: Any) -> Delivery | None:
    if row["d_id"] is None:
        return None
    return _delivery_from_row({c: row[f"d_{c}"] for c in _cols(_DELIVERY_COLUMNS)})


class SubscriptionMethods(Hints):
    """The webhook subscriptions and task handles of `PostgresStore`."""

    async def save_subscription(
        self,
        sub: Subscription,
        now: datetime,
        *,
        secret_grace: timedelta,
        max_per_owner: int,
    ) -> tuple[Subscription, bool]:
        async def save_on(conn: asyncpg.Connection) -> tuple[Subscription, bool]:
            # One owner's subscriptions are counted under a lock of their own (two nodes
            # creating at once cannot both take the last place).
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('wakecall-subscriptions:' || $1))",
                sub.owner,
            )
            found = await conn.fetchrow(
                f"SELECT {_SUB_COLUMNS} FROM event_subscriptions WHERE id = $1 AND owner = $2 "
                "FOR UPDATE",
                sub.id,
                sub.owner,
            )
            if found is None:
                held = await conn.fetchval(
                    "SELECT count(*) FROM event_subscriptions WHERE owner = $1", sub.owner
                )
                if held >= max_per_owner:
                    raise LimitReached(
                        f"you hold {held} event subscriptions, the most allowed; "
                        "events/unsubscribe one you no longer need"
                    )
                await _drop_pending(conn, sub.id)  # an ended subscription's farewell
                marks = ", ".join(f"${i}" for i in range(1, len(_SUB_NAMES) + 1))
                await conn.execute(
                    f"INSERT INTO event_subscriptions ({_SUB_COLUMNS}) VALUES ({marks})",
                    *_sub_values(sub),
                )
                return sub, True
            old = _sub_from_row(found)
            rotated = old.secret != sub.secret
            row = await conn.fetchrow(
                "UPDATE event_subscriptions SET secret = $1, old_secret = $2, "
                "old_secret_until = $3, refresh_before = $4, updated_at = $5, active = true, "
                f"suspended_at = NULL WHERE id = $6 RETURNING {_SUB_COLUMNS}",
                sub.secret,
                old.secret if rotated else old.old_secret,
                now + secret_grace if rotated else old.old_secret_until,
                sub.refresh_before,
                now,
                sub.id,
            )
            return _sub_from_row(row), False

        return await self._tx(save_on)

    async def get_subscription(self, owner: str, subscription_id: str) -> Subscription | None:
        row = await self._call(
            lambda c: c.fetchrow(
                f"SELECT {_SUB_COLUMNS} FROM event_subscriptions WHERE id = $1 AND owner = $2",
                subscription_id,
                owner,
            )
        )
        return None if row is None else _sub_from_row(row)

    async def endpoint_verified(self, owner: str, url: str) -> bool:
        value = await self._call(
            lambda c: c.fetchval(
                "SELECT 1 FROM event_subscriptions WHERE owner = $1 AND url = $2 LIMIT 1",
                owner,
                url,
            )
        )
        return value is not None

    async def delete_subscription(self, owner: str | None, subscription_id: str) -> bool:
        async def delete_on(conn: asyncpg.Connection) -> bool:
            gone = await conn.fetchval(
                "DELETE FROM event_subscriptions WHERE id = $1 "
                "AND ($2::text IS NULL OR owner = $2) RETURNING 1",
                subscription_id,
                owner,
            )
            if gone is not None:
                await _drop_pending(conn, subscription_id)
            return gone is not None

        return await self._tx(delete_on)

    async def subscriptions_to_feed(
        self, now: datetime, limit: int
    ) -> list[tuple[Subscription, Delivery | None]]:
        rows = await self._call(
            lambda c: c.fetch(
                f"SELECT {_S_COLUMNS}, {_D_COLUMNS} FROM event_subscriptions s "
                "LEFT JOIN deliveries d ON d.id = s.pending_delivery "
                "WHERE s.active AND (s.refresh_before IS NULL OR s.refresh_before > $1) "
                "AND (s.pending_delivery IS NULL OR d.id IS NULL OR d.status <> 'pending') "
                "ORDER BY s.id LIMIT $2",
                now,
                limit,
            )
        )
        return [(_sub_from_row(r), _delivery_of(r)) for r in rows]

    async def advance_subscription(
        self,
        before: Subscription,
        after: Subscription,
        delivery: NewSubscriptionDelivery | None = None,
        *,
        now: datetime,
    ) -> bool:
        async def advance_on(conn: asyncpg.Connection) -> bool:
            changed = await conn.fetchval(
                "UPDATE event_subscriptions SET cursor = $1, acked_through = $2, "
                "pending_delivery = $3, active = $4, last_delivery_at = $5, last_error = $6, "
                "failed_since = $7, suspended_at = $8 WHERE id = $9 AND cursor = $10 "
                "AND pending_delivery IS NOT DISTINCT FROM $11 RETURNING 1",
                after.cursor,
                after.acked_through,
                after.pending_delivery,
                after.active,
                after.last_delivery_at,
                after.last_error,
                after.failed_since,
                after.suspended_at,
                before.id,
                before.cursor,
                before.pending_delivery,
            )
            if changed is not None and delivery is not None:
                await _insert_delivery(conn, after, delivery, now)
                await self._hint(conn, due=True)
            return changed is not None

        return await self._tx(advance_on)

    async def subscriptions_to_end(
        self, now: datetime, suspended_before: datetime, limit: int
    ) -> list[Subscription]:
        rows = await self._call(
            lambda c: c.fetch(
                f"SELECT {_SUB_COLUMNS} FROM event_subscriptions WHERE refresh_before <= $1 "
                "OR (refresh_before IS NULL AND NOT active AND suspended_at <= $2) "
                "ORDER BY id LIMIT $3",
                now,
                suspended_before,
                limit,
            )
        )
        return [_sub_from_row(r) for r in rows]

    async def end_subscription(
        self, sub: Subscription, farewell: NewSubscriptionDelivery | None, *, now: datetime
    ) -> bool:
        async def end_on(conn: asyncpg.Connection) -> bool:
            gone = await conn.fetchval(
                "DELETE FROM event_subscriptions WHERE id = $1 AND updated_at = $2 "
                "AND active = $3 AND refresh_before IS NOT DISTINCT FROM $4 RETURNING 1",
                sub.id,
                sub.updated_at,
                sub.active,
                sub.refresh_before,
            )
            if gone is None:
                return False
            await _drop_pending(conn, sub.id)
            if farewell is not None:
                await _insert_delivery(conn, sub, farewell, now)
                await self._hint(conn, due=True)
            return True

        return await self._tx(end_on)

    async def subscription_routes(
        self, delivery_ids: Sequence[str], now: datetime
    ) -> dict[str, SubscriptionRoute]:
        ids = list(dict.fromkeys(delivery_ids))
        if not ids:
            return {}
        rows = await self._call(
            lambda c: c.fetch(
                "SELECT d.id, d.subscription_id, d.message_id, d.secret AS own_secret, "
                "s.secret, s.old_secret, s.old_secret_until FROM deliveries d "
                "LEFT JOIN event_subscriptions s ON s.id = d.subscription_id "
                "WHERE d.id = ANY($1::text[]) AND d.subscription_id IS NOT NULL",
                ids,
            )
        )
        return {
            r["id"]: subscription_route(
                r["subscription_id"],
                r["message_id"] or r["id"],
                r["own_secret"],
                r["secret"],
                r["old_secret"],
                r["old_secret_until"],
                now,
            )
            for r in rows
        }

    async def create_tool_task(self, task: ToolTask) -> None:
        async def create_on(conn: asyncpg.Connection) -> None:
            await conn.execute(
                "DELETE FROM tool_tasks WHERE owner = $1 AND expires_at <= $2",
                task.owner,
                task.created_at,
            )
            await conn.execute(
                "INSERT INTO tool_tasks (id, owner, run_id, created_at, expires_at) "
                "VALUES ($1, $2, $3, $4, $5)",
                task.id,
                task.owner,
                task.run_id,
                task.created_at,
                task.expires_at,
            )

        await self._tx(create_on)

    async def get_tool_task(self, owner: str, task_id: str, now: datetime) -> ToolTask | None:
        row = await self._call(
            lambda c: c.fetchrow(
                "SELECT id, owner, run_id, created_at, expires_at FROM tool_tasks "
                "WHERE id = $1 AND owner = $2 AND expires_at > $3",
                task_id,
                owner,
                now,
            )
        )
        if row is None:
            return None
        return ToolTask(
            row["id"], row["owner"], row["run_id"], row["created_at"], row["expires_at"]
        )


async def _drop_pending(conn: asyncpg.Connection, subscription_id: str) -> None:
    await conn.execute(
        "DELETE FROM deliveries WHERE subscription_id = $1 AND status = 'pending'",
        subscription_id,
    )


async def _insert_delivery(
    conn: asyncpg.Connection, sub: Subscription, delivery: NewSubscriptionDelivery, now: datetime
) -> None:
    """`delivery` pending for `sub`, due `now`."""
    await conn.execute(
        "INSERT INTO deliveries (id, owner, task_id, event_cursor, event_type, url, body, "
        "status, attempts, next_attempt_at, created_at, subscription_id, message_id, secret) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8, $9, $10, $11)",
        delivery.id,
        sub.owner,
        delivery.task_id,
        delivery.event_cursor,
        delivery.event_type,
        sub.url,
        delivery.body,
        now,
        sub.id,
        delivery.message_id,
        delivery.secret,
    )


def _sub_values(sub: Subscription) -> list[Any]:
    values: list[Any] = []
    for name in _SUB_NAMES:
        value = getattr(sub, name)
        if name == "arguments":
            value = json.dumps(value, sort_keys=True, separators=(",", ":"))
        values.append(value)
    return values
