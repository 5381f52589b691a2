"""Webhook subscriptions of the Events extension: `events/subscribe` and `events/unsubscribe`.

A subscription is keyed by `(owner, delivery.url, name, arguments)` and its id derived from
that key. It needs an authenticated owner: over HTTP a bearer token (an HTTP server without
tokens offers poll and push only); over stdio and in process, the server's own owner. Before
the first subscription of an owner to a URL, the endpoint must echo a challenge; the
subscription is stored (durably: it survives restarts and serves every node) only once it
did. Its TTL is granted as `refreshBefore`; a refresh (the same subscribe again) grants a new
one, replaces the secret (the old one keeps signing for `SECRET_GRACE`) and resumes delivery
if it was suspended. Deliveries go through `delivery.subscriptions`.

Where delivery starts: for a new subscription (or one that lapsed), the client's `cursor`
(null: now), later when it is older than what retention kept, and past the events older than
`maxAgeMs` (ignored with a null cursor); `truncated` says when that skipped events. A refresh
goes on where delivery stands, the client's cursor ignored; when events after that position
were pruned before they were fed (a subscription suspended for longer than events are kept),
it moves on to the pruned horizon and answers `truncated` (unless the feeder got there first:
it then POSTs a `gap` envelope with that cursor). The refresh that resumes a suspended
subscription answers `truncated` too: the event whose delivery failed for good was skipped.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio
import httpx2
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from wakecall.delivery.occurrences import Start, age_floor, start_at, start_not_before
from wakecall.delivery.signing import sign
from wakecall.errors import InvalidInput, LimitReached, UnsafeURL
from wakecall.models.subscriptions import Subscription
from wakecall.net import check_url
from wakecall.server.auth import authenticated_owner
from wakecall.server.events.extension import SubscribeParams, UnsubscribeParams
from wakecall.server.events.service import (
    CALLBACK_ENDPOINT_ERROR,
    FORBIDDEN,
    NOT_FOUND,
    RESOURCE_EXHAUSTED,
    UNSUPPORTED,
    check_subscription,
    parse_cursor,
)

if TYPE_CHECKING:
    from wakecall.server.runtime import Runtime

__all__ = ["WebhookService", "subscription_id"]

#: A TTL not asked for; the longest and shortest granted.
DEFAULT_TTL = timedelta(days=1)
MAX_TTL = timedelta(days=30)
MIN_TTL = timedelta(minutes=1)
#: After a secret is replaced, the old one keeps signing this long.
SECRET_GRACE = timedelta(minutes=10)
MAX_SUBSCRIPTIONS = 100
CHALLENGE_TIMEOUT = 10.0


def subscription_id(owner: str, url: str, name: str, arguments: dict[str, Any]) -> str:
    """The id derived from a subscription's key."""
    key = json.dumps([owner, url, name, arguments], sort_keys=True, separators=(",", ":"))
    return "sub_" + hashlib.sha256(key.encode()).hexdigest()[:32]


def _check_secret(secret: str | None) -> str:
    example = "whsec_ followed by base64 of 24 to 64 random bytes"
    if not secret or not secret.startswith("whsec_"):
        raise MCPError(INVALID_PARAMS, f"delivery.secret is required: {example}")
    try:
        key = base64.b64decode(secret[len("whsec_") :], validate=True)
    except (binascii.Error, ValueError):
        raise MCPError(INVALID_PARAMS, f"delivery.secret is not valid base64: {example}") from None
    if not 24 <= len(key) <= 64:
        raise MCPError(
            INVALID_PARAMS, f"delivery.secret holds {len(key)} bytes, not 24 to 64: {example}"
        )
    return secret


def _grant(ttl_ms: int | None, now: datetime) -> datetime | None:
    """`refreshBefore` for a suggested TTL: -1 is no suggestion, None asks for no expiry."""
    if ttl_ms is None:
        return None
    if ttl_ms < 0:
        return now + DEFAULT_TTL
    ttl = min(max(timedelta(milliseconds=ttl_ms), MIN_TTL), MAX_TTL)
    return now + ttl


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _check_mode(mode: str) -> None:
    if mode != "webhook":
        raise MCPError(
            UNSUPPORTED,
            f"events/subscribe delivers by webhook only, not {mode!r}; "
            "use events/poll or events/stream",
            {"feature": "deliveryMode", "value": mode},
        )


def _answer(sub: Subscription, truncated: bool, before: Subscription | None) -> dict[str, Any]:
    """The answer to `events/subscribe` for `sub` as stored; a refresh (of `before`, as it
    was) tells how delivery went."""
    answer: dict[str, Any] = {
        "id": sub.id,
        "refreshBefore": _iso(sub.refresh_before),
        "cursor": str(sub.acked_through),
        "truncated": truncated,
    }
    if before is not None:
        answer["deliveryStatus"] = {
            "active": before.active,
            "lastDeliveryAt": _iso(before.last_delivery_at),
            "lastError": before.last_error,
            **({"failedSince": _iso(before.failed_since)} if before.failed_since else {}),
        }
    return answer


@dataclass(frozen=True)
class _Endpoint:
    url: str
    secret: str
    sub_id: str


class WebhookService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def _owner(self, ctx: ServerRequestContext[Any, Any]) -> str:
        owner = authenticated_owner(ctx, self.rt.settings.owner)
        if owner is None:
            raise MCPError(
                FORBIDDEN,
                "webhook subscriptions need an authenticated caller: connect with a bearer "
                "token (this server offers events/poll and events/stream without one)",
            )
        return owner

    def _url(self, url: str) -> str:
        if not url.lower().startswith("https://"):
            raise MCPError(
                INVALID_PARAMS,
                f"delivery.url must be https, not {url!r}: e.g. https://hooks.example.com/mcp",
            )
        try:
            check_url(url, self.rt.outbound, field="delivery.url")
        except (UnsafeURL, InvalidInput) as exc:
            raise MCPError(INVALID_PARAMS, str(exc)) from None
        return url

    async def subscribe(
        self, ctx: ServerRequestContext[Any, Any], params: SubscribeParams
    ) -> dict[str, Any]:
        owner = self._owner(ctx)
        check_subscription(params.name, params.arguments)
        _check_mode(params.delivery.mode)
        url = self._url(params.delivery.url)
        secret = _check_secret(params.delivery.secret)
        cursor = parse_cursor(params.cursor)
        store, now = self.rt.engine.store, self.rt.engine.clock.now()
        sub_id = subscription_id(owner, url, params.name, params.arguments)
        existing = await store.get_subscription(owner, sub_id)
        if existing is None:
            if not await store.endpoint_verified(owner, url):
                await self._challenge(_Endpoint(url, secret, sub_id))
            start = await self._start(owner, params, cursor, now)
        else:
            start = Start(existing.cursor, truncated=False)
        wanted = Subscription(
            id=sub_id,
            owner=owner,
            url=url,
            name=params.name,
            arguments=params.arguments,
            secret=secret,
            old_secret=None,
            old_secret_until=None,
            cursor=start.position,
            acked_through=start.position,
            pending_delivery=None,
            active=True,
            refresh_before=_grant(params.ttl_ms, now),
            created_at=now,
            updated_at=now,
            verified_at=now,
        )
        stored, created = await self._save(wanted, now)
        truncated = start.truncated
        if not created:
            stored, pruned = await self._past_pruned(stored, now)
            # Suspended: the delivery that failed for good was given up (skipped).
            truncated = pruned or (existing is not None and not existing.active)
        self.rt.feeder.wake()
        return _answer(stored, truncated, None if created else existing)

    async def _start(
        self, owner: str, params: SubscribeParams, cursor: int | None, now: datetime
    ) -> Start:
        """Where a new subscription's delivery starts: after the client's cursor (now for
        null), no earlier than what retention kept nor than the `maxAgeMs` floor."""
        store = self.rt.engine.store
        start = await start_at(store, owner, cursor)
        if cursor is None:
            return start  # maxAgeMs is ignored: null already means now
        floor = age_floor(now, params.max_age_ms)
        return await start_not_before(store, owner, params.name, params.arguments, start, floor)

    async def _save(self, sub: Subscription, now: datetime) -> tuple[Subscription, bool]:
        try:
            return await self.rt.engine.store.save_subscription(
                sub, now, secret_grace=SECRET_GRACE, max_per_owner=MAX_SUBSCRIPTIONS
            )
        except LimitReached as exc:
            raise MCPError(
                RESOURCE_EXHAUSTED, str(exc), {"limit": "subscriptions", "max": MAX_SUBSCRIPTIONS}
            ) from None

    async def _past_pruned(self, sub: Subscription, now: datetime) -> tuple[Subscription, bool]:
        """`sub` moved on to its owner's pruned horizon when events after its position were
        pruned before it was fed them, and whether it was. Not while a delivery is in flight,
        nor when the feeder moved it first (it then sends a `gap` envelope)."""
        store = self.rt.engine.store
        if sub.pending_delivery is not None:
            return sub, False
        horizon = await store.event_horizon(sub.owner)
        if sub.cursor >= horizon:
            return sub, False
        moved = replace(sub, cursor=horizon, acked_through=horizon)
        if await store.advance_subscription(sub, moved, now=now):
            return moved, True
        return sub, False

    async def unsubscribe(
        self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeParams
    ) -> dict[str, Any]:
        owner = self._owner(ctx)
        sub_id = subscription_id(owner, params.delivery.url, params.name, params.arguments)
        if not await self.rt.engine.store.delete_subscription(owner, sub_id):
            raise MCPError(
                NOT_FOUND,
                "no subscription of yours matches this name, arguments and delivery.url",
                {"kind": "subscription"},
            )
        return {}

    async def _challenge(self, endpoint: _Endpoint) -> None:
        """POST a verification envelope; the endpoint must echo its challenge in a 2xx
        answer. `CallbackEndpointError` with the sketch's category otherwise."""
        nonce = secrets.token_urlsafe(24)
        body = json.dumps({"type": "verification", "challenge": nonce}, separators=(",", ":"))
        message_id = f"msg_verification_{secrets.token_hex(8)}"
        stamp = int(self.rt.engine.clock.now().timestamp())
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign([endpoint.secret], message_id, stamp, body),
            "x-mcp-subscription-id": endpoint.sub_id,
        }
        client = self.rt.callbacks.client
        reason: str | None = None
        try:
            with anyio.fail_after(CHALLENGE_TIMEOUT):
                answer = await client.post(
                    endpoint.url,
                    content=body.encode(),
                    headers=headers,
                    timeout=CHALLENGE_TIMEOUT,
                    follow_redirects=False,
                )
        except TimeoutError:
            reason = "timeout"
        except UnsafeURL as exc:
            raise MCPError(INVALID_PARAMS, str(exc)) from None
        except httpx2.TimeoutException:
            reason = "timeout"
        except httpx2.HTTPError as exc:
            text = f"{type(exc).__name__} {exc}".lower()
            reason = "tls_error" if "ssl" in text or "certificate" in text else "connection_refused"
        else:
            reason = self._judge(answer.status_code, answer.content[:4096], nonce)
        if reason is not None:
            raise MCPError(
                CALLBACK_ENDPOINT_ERROR,
                f"the endpoint {endpoint.url} did not confirm the subscription ({reason}): it "
                'must answer the verification POST with 2xx and {"challenge": "<the challenge>"}',
                {"reason": reason},
            )

    @staticmethod
    def _judge(status: int, body: bytes, nonce: str) -> str | None:
        if 400 <= status < 500:
            return "http_4xx"
        if status >= 500:
            return "http_5xx"
        if not 200 <= status < 300:
            return "challenge_failed"
        try:
            echoed = json.loads(body).get("challenge")
        except (ValueError, AttributeError):
            return "challenge_failed"
        if not isinstance(echoed, str) or not hmac.compare_digest(echoed, nonce):
            return "challenge_failed"
        return None
