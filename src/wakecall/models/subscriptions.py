"""The records of reaching the agent beyond the inbox: MCP Events webhook subscriptions (with
the route a delivery of theirs takes) and the task handles of the MCP Tasks extension."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["Subscription", "SubscriptionRoute", "ToolTask", "subscription_route"]


@dataclass(frozen=True, slots=True)
class Subscription:
    """An MCP Events webhook subscription of `owner`: events named `name` that match
    `arguments` are POSTed to `url`, signed with `secret` (and `old_secret` until
    `old_secret_until`, after a rotation), one at a time in log order.

    `cursor` is how far the owner's log was fed to it; `acked_through` how far every event was
    delivered or given up (the watermark a delivery carries); `pending_delivery` the id of the
    delivery in flight. `refresh_before` None: no expiry. `active` False: delivery suspended
    (since `suspended_at`) after a delivery was dead-lettered, until the client refreshes the
    subscription."""

    id: str
    owner: str
    url: str
    name: str
    arguments: dict[str, Any]
    secret: str
    old_secret: str | None
    old_secret_until: datetime | None
    cursor: int
    acked_through: int
    pending_delivery: str | None
    active: bool
    refresh_before: datetime | None
    created_at: datetime
    updated_at: datetime
    verified_at: datetime
    last_delivery_at: datetime | None = None
    last_error: str | None = None
    failed_since: datetime | None = None
    suspended_at: datetime | None = None

    def secrets_at(self, now: datetime) -> list[str]:
        """The secrets that sign at `now`, newest first."""
        found = [self.secret]
        if self.old_secret and self.old_secret_until is not None and self.old_secret_until > now:
            found.append(self.old_secret)
        return found


@dataclass(frozen=True, slots=True)
class SubscriptionRoute:
    """How a delivery made for a subscription is sent: its `webhook-id` (the event's id, or a
    control envelope's `msg_<type>_<random>`; the same on every retry), the subscription's id
    (the `X-MCP-Subscription-Id` header) and the secrets that sign it now (none once the
    subscription is gone).

    A `farewell` is the `terminated` envelope queued as the server deleted its subscription:
    it is signed with the secret it was queued with and attempted once."""

    subscription_id: str
    message_id: str
    secrets: list[str]
    farewell: bool = False


def subscription_route(
    subscription_id: str,
    message_id: str,
    own_secret: str | None,
    secret: str | None,
    old_secret: str | None,
    old_secret_until: datetime | None,
    now: datetime,
) -> SubscriptionRoute:
    """The route of a subscription's delivery as a store reads it: a delivery with a secret of
    its `own` is a farewell signed with it; any other is signed with its subscription's
    `secret` (none once the subscription is gone) and, until `old_secret_until`, its
    `old_secret`."""
    if own_secret is not None:
        return SubscriptionRoute(subscription_id, message_id, [own_secret], farewell=True)
    secrets: list[str] = []
    if secret is not None:
        secrets.append(secret)
        if old_secret and old_secret_until is not None and old_secret_until > now:
            secrets.append(old_secret)
    return SubscriptionRoute(subscription_id, message_id, secrets)


@dataclass(frozen=True, slots=True)
class ToolTask:
    """A Tasks extension handle: the unguessable id a client polls for a run of `owner`."""

    id: str
    owner: str
    run_id: str
    created_at: datetime
    expires_at: datetime
