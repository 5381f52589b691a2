"""The control envelopes a webhook subscription is POSTed besides its events (the design
sketch's "non-event webhook bodies"), and the sketch's error codes they and the requests use.

Each envelope is a `NewSubscriptionDelivery` for the durable delivery queue: signed and headed
like an event (Standard Webhooks headers and `X-MCP-Subscription-Id`), its `webhook-id`
`msg_<type>_<random>`, the same on every retry.

* `gap`: events after the subscription's position were pruned before it was fed them; the
  body's `cursor` is where delivery goes on from (the client persists it and treats it as
  `truncated: true`).
* `terminated`: the server ended the subscription; it no longer exists. A farewell carries the
  secret that signs it, since the subscription's goes with it, and is attempted once.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from wakecall.ids import new_id
from wakecall.models import EnvelopeType
from wakecall.models.subscriptions import Subscription
from wakecall.store.base import NewSubscriptionDelivery

__all__ = [
    "CALLBACK_ENDPOINT_ERROR",
    "FORBIDDEN",
    "NOT_FOUND",
    "RESOURCE_EXHAUSTED",
    "UNSUPPORTED",
    "expired_farewell",
    "gap_envelope",
    "suspended_farewell",
]

#: The sketch's error codes.
NOT_FOUND = -32011
FORBIDDEN = -32012
RESOURCE_EXHAUSTED = -32013
UNSUPPORTED = -32014
CALLBACK_ENDPOINT_ERROR = -32015


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _envelope(
    kind: EnvelopeType, cursor: int, body: dict[str, Any], secret: str | None = None
) -> NewSubscriptionDelivery:
    return NewSubscriptionDelivery(
        id=new_id("msg"),
        message_id=f"msg_{kind}_{secrets.token_hex(8)}",
        event_cursor=cursor,
        event_type=str(kind),
        task_id=None,
        body=json.dumps({"type": str(kind), **body}, separators=(",", ":")),
        secret=secret,
    )


def gap_envelope(horizon: int) -> NewSubscriptionDelivery:
    """`{"type": "gap", "cursor": "<horizon>"}`: delivery goes on after `horizon`, the newest
    position whose events were pruned."""
    return _envelope(EnvelopeType.GAP, horizon, {"cursor": str(horizon)})


def _terminated(
    sub: Subscription, code: int, message: str, data: dict[str, Any]
) -> NewSubscriptionDelivery:
    error = {"code": code, "message": message, "data": data}
    return _envelope(EnvelopeType.TERMINATED, sub.acked_through, {"error": error}, sub.secret)


def suspended_farewell(sub: Subscription) -> NewSubscriptionDelivery:
    """The `terminated` envelope of a subscription granted no expiry that was ended because
    its delivery stayed suspended: `CallbackEndpointError`, `data.reason` the category of the
    failure."""
    reason = sub.last_error or "connection_refused"
    since = _iso(sub.failed_since or sub.suspended_at or sub.updated_at)
    return _terminated(
        sub,
        CALLBACK_ENDPOINT_ERROR,
        f"deliveries to this endpoint have failed ({reason}) since {since} and the "
        "subscription, granted no expiry, stayed suspended without a refresh: it has ended; "
        "events/subscribe again (with your last cursor) to resume",
        {"reason": reason},
    )


def expired_farewell(sub: Subscription) -> NewSubscriptionDelivery:
    """The `terminated` envelope of a subscription not refreshed before its `refreshBefore`:
    `NotFound` of the subscription, `data.reason` "expired"."""
    until = _iso(sub.refresh_before) if sub.refresh_before is not None else "its refreshBefore"
    return _terminated(
        sub,
        NOT_FOUND,
        f"the subscription was not refreshed before {until} and has expired; "
        "events/subscribe again (with your last cursor) to resume",
        {"kind": "subscription", "reason": "expired"},
    )
