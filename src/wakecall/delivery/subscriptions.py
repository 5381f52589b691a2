"""MCP Events webhook subscriptions: each is fed its owner's log, one matching event at a time,
into the durable delivery queue (`callbacks.CallbackDispatcher` sends, retries and
dead-letters them, signed with the subscription's secret).

The queue is the callbacks' own (the `deliveries` table): its leases, retries with backoff,
dead letters, `list_deliveries`/`redeliver` and metrics serve subscriptions as they serve task
callbacks, so there is one delivery machinery to trust. On top of it, a subscription has at
most one delivery in flight: the next matching event is queued when the previous one was
delivered or given up. So deliveries arrive in log order, and the `cursor` each body carries
(the event's own position) is a safe watermark: every event before it was delivered or given
up. A subscription's position moves in the same transaction that queues its delivery, with a
check that no other node moved it first, so across restarts and nodes every matching event is
queued exactly once.

When a delivery ends:
* delivered: the next event is queued;
* refused with 410 Gone: the subscription is deleted (the receiver asked to stop for good);
* dead-lettered (retries exhausted, or 413 Payload Too Large): the event is given up, and
  delivery is suspended until the client refreshes the subscription (`events/subscribe`),
  which makes it active again; `deliveryStatus` then reports the failure.

Control envelopes (`delivery.envelopes`) go through the same queue, one at a time like events:
* `gap`, when events after a subscription's position were pruned before it was fed them (its
  delivery was held up, or suspended, for longer than events are kept): delivery goes on
  after the owner's pruned horizon, the envelope's `cursor`;
* `terminated`, as the server deletes a subscription: when its `refreshBefore` passed without
  a refresh, and when one granted no expiry (which no TTL ends) stayed suspended for
  `NO_EXPIRY_SUSPENSION_LIMIT`. It is signed with the subscription's secret, which it carries
  (the subscription is gone), and attempted once. A 410 Gone and `events/unsubscribe` end a
  subscription without one: the receiver or the client asked for it. So does the outgoing-URL
  guard refusing a subscription's URL as it is fed (the operator narrowed `--allow-outbound`
  since it was made): nothing may be sent there, not even a farewell.

A body stays under `MAX_BODY_BYTES` (the sketch's 256 KiB): a larger event is sent without
its run's output and input (and a wakeup's context), named in `_meta`, for the client to
read in full with `get_events` or `events/poll`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import anyio

from wakecall.clock import Clock
from wakecall.delivery.envelopes import expired_farewell, gap_envelope, suspended_farewell
from wakecall.delivery.occurrences import Found, event_id, occurrence, read_matching
from wakecall.errors import InvalidInput, StoreError, UnsafeURL
from wakecall.ids import new_id
from wakecall.models import Delivery, DeliveryStatus, Event
from wakecall.models.subscriptions import Subscription
from wakecall.net.guard import OutboundPolicy, check_url
from wakecall.store.base import Hint, NewSubscriptionDelivery, Store

__all__ = [
    "MAX_BODY_BYTES",
    "NO_EXPIRY_SUSPENSION_LIMIT",
    "SubscriptionFeeder",
    "delivery_body",
    "error_category",
]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
OMITTED_KEY = "dev.wakecall/omitted"
#: Subscriptions fed (or ended) per step (a full batch means another step at once).
BATCH = 100
#: A subscription granted no expiry has no TTL to end it once its endpoint is gone: when its
#: delivery has stayed suspended this long (no refresh made it active again), it is ended.
NO_EXPIRY_SUSPENSION_LIMIT = timedelta(hours=24)


def delivery_body(event: Event) -> str:
    """The exact body POSTed for `event`: its occurrence with its position as the cursor,
    thinned under `MAX_BODY_BYTES` when needed."""
    found = occurrence(event, cursor=event.cursor)
    body = json.dumps(found, separators=(",", ":"))
    if len(body.encode()) <= MAX_BODY_BYTES:
        return body
    data = json.loads(json.dumps(found["data"]))
    omitted = []
    for outer, inner in (("run", "output"), ("run", "input"), ("wakeup", "context")):
        part = data.get(outer)
        if isinstance(part, dict) and part.get(inner) is not None:
            part[inner] = None
            omitted.append(f"{outer}.{inner}")
    found["data"] = data
    found["_meta"] = {OMITTED_KEY: omitted}
    return json.dumps(found, separators=(",", ":"))


def error_category(delivery: Delivery) -> str:
    """The sketch's `lastError` category of a failed delivery (never the receiver's words)."""
    status = delivery.last_status
    if status is not None and 400 <= status < 500:
        return "http_4xx"
    if status is not None and status >= 500:
        return "http_5xx"
    text = (delivery.last_error or "").lower()
    if "ssl" in text or "certificate" in text or "tls" in text:
        return "tls_error"
    if "timeout" in text or "no complete answer" in text:
        return "timeout"
    return "connection_refused"


class SubscriptionFeeder:
    """Feeds every active subscription its next matching event, on this node. Woken when this
    node writes events, by the store's hints (other nodes' events, deliveries ended there),
    when a delivery of this node ends, and at least every `poll_interval`."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock,
        poll_interval: timedelta = timedelta(seconds=2),
        on_queued: Callable[[], None] | None = None,
        outbound: OutboundPolicy | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        #: The guard's policy, to check each subscription's URL again as it is fed (None: not).
        self.outbound = outbound
        self.poll_interval = poll_interval
        #: Told when a delivery was queued, so the sender looks at once (not at its next poll).
        self.on_queued = on_queued
        self._wake = anyio.Event()

    def wake(self) -> None:
        self._wake.set()

    def on_events(self, events: Sequence[Event]) -> None:
        self.wake()

    def on_hint(self, hint: Hint) -> None:
        self.wake()

    def on_delivery(self, delivery: Delivery) -> None:
        if delivery.status != DeliveryStatus.PENDING:
            self.wake()

    async def run(self) -> None:
        while True:
            self._wake = anyio.Event()
            try:
                again = await self.step()
            except StoreError as exc:
                log.error("feeding event subscriptions failed, retrying: %s", exc)
                again = False
            if again:
                continue
            with anyio.move_on_after(self.poll_interval.total_seconds()):
                await self._wake.wait()

    async def step(self) -> bool:
        """End the subscriptions that are over, then feed each that is due; whether to step
        again at once."""
        now = self.clock.now()
        again = await self._end_over(now)
        due = await self.store.subscriptions_to_feed(now, BATCH)
        again = len(due) == BATCH or again
        for sub, last in due:
            again = await self._feed(sub, last, now) or again
        return again

    async def _end_over(self, now: datetime) -> bool:
        """Delete the subscriptions that are over, each with its `terminated` envelope;
        whether more may be over."""
        over = await self.store.subscriptions_to_end(now, now - NO_EXPIRY_SUSPENSION_LIMIT, BATCH)
        for sub in over:
            expired = sub.refresh_before is not None
            farewell: NewSubscriptionDelivery | None = None  # none where the guard refuses
            if self._refused(sub) is None:
                farewell = expired_farewell(sub) if expired else suspended_farewell(sub)
            if await self.store.end_subscription(sub, farewell, now=now):
                log.info(
                    "subscription %s ended: %s",
                    sub.id,
                    "not refreshed in time" if expired else "delivery suspended too long",
                    extra={"action": "subscription_ended"},
                )
                self._queued()
        return len(over) == BATCH

    async def _feed(self, sub: Subscription, last: Delivery | None, now: datetime) -> bool:
        """Settle the delivery that ended and queue the next; whether more may be due."""
        refused = self._refused(sub)
        if refused is not None:
            if await self.store.end_subscription(sub, None, now=now):
                log.warning(
                    "subscription %s ended: its URL is refused now (%s)",
                    sub.id,
                    refused,
                    extra={"action": "subscription_ended"},
                )
            return False
        after = sub
        if sub.pending_delivery is not None:
            settled = self._settled(sub, last, now)
            if settled is None:
                await self.store.delete_subscription(None, sub.id)
                log.info("subscription %s ended: its receiver answered 410 Gone", sub.id)
                return False
            after = settled
        if not after.active:
            await self.store.advance_subscription(sub, after, now=now)
            return False
        found = await read_matching(
            self.store, sub.owner, sub.name, sub.arguments, after.cursor, limit=1
        )
        # Read after the events: a prune that deleted some of them before they were read
        # has moved the horizon by now.
        horizon = await self.store.event_horizon(sub.owner)
        delivery, after = self._next(after, found, horizon)
        if after == sub:
            return False
        moved = await self.store.advance_subscription(sub, after, delivery, now=now)
        if moved and delivery is not None:
            self._queued()
        return moved and found.more

    @staticmethod
    def _next(
        sub: Subscription, found: Found, horizon: int
    ) -> tuple[NewSubscriptionDelivery | None, Subscription]:
        """What to queue for `sub` (settled, active), having read `found` after its position,
        and where it then stands: a `gap` envelope when events after its position were pruned
        (up to `horizon`), else the next matching event, else nothing (read to the end)."""
        if sub.cursor < horizon:
            gap = gap_envelope(horizon)
            return gap, replace(sub, cursor=horizon, pending_delivery=gap.id)
        if not found.events:
            return None, replace(sub, cursor=found.position, acked_through=found.position)
        event = found.events[0]
        delivery = NewSubscriptionDelivery(
            id=new_id("msg"),
            message_id=event_id(event),
            event_cursor=event.cursor,
            event_type=str(event.type),
            task_id=event.task_id,
            body=delivery_body(event),
        )
        return delivery, replace(sub, cursor=event.cursor, pending_delivery=delivery.id)

    def _refused(self, sub: Subscription) -> str | None:
        """Why the guard refuses `sub`'s URL now, or None when it takes it."""
        if self.outbound is None:
            return None
        try:
            check_url(sub.url, self.outbound, field="delivery.url")
        except (UnsafeURL, InvalidInput) as exc:
            return str(exc)
        return None

    def _queued(self) -> None:
        if self.on_queued is not None:
            self.on_queued()

    @staticmethod
    def _settled(sub: Subscription, last: Delivery | None, now: datetime) -> Subscription | None:
        """The subscription once its delivery's end is taken into account; None when the
        receiver asked to stop for good."""
        if last is None or last.status == DeliveryStatus.DELIVERED:
            return replace(
                sub,
                pending_delivery=None,
                acked_through=sub.cursor,
                last_delivery_at=last.delivered_at if last is not None else sub.last_delivery_at,
                last_error=None,
                failed_since=None,
            )
        if last.last_status == 410:
            return None
        return replace(
            sub,
            pending_delivery=None,
            acked_through=sub.cursor,  # given up: the watermark moves past it
            active=False,
            last_error=error_category(last),
            failed_since=sub.failed_since or last.created_at,
            suspended_at=now,
        )
