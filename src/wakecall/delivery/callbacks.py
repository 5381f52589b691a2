"""Signed webhook callbacks with a durable retry queue.

Each event of a task with a `callback_url` is stored with a pending `Delivery` in the same
transaction as the event (see the store). This dispatcher claims due deliveries with a lease,
POSTs them signed per Standard Webhooks (`webhook-id` stable across retries), and records each
attempt: 2xx delivered; 410 stops at once; anything else (or a transport error) is retried on
`RETRY_SCHEDULE` with jitter, honouring `Retry-After`, until `max_attempts`, then dead-lettered
(status `failed`, listed by `list_deliveries`, sent again by `redeliver`). Sends run side by
side (a slow receiver holds one slot, not the queue), and the queue lives in the store, so it
survives restarts and is shared by every node.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import anyio
import anyio.abc
import httpx2

from wakecall.clock import Clock
from wakecall.errors import StoreError, UnsafeURL
from wakecall.models import CALLBACK_EVENTS, Delivery, Event
from wakecall.store.base import Hint, Store

from .signing import sign

__all__ = ["RETRY_SCHEDULE", "CallbackDispatcher", "retry_delay"]

log = logging.getLogger(__name__)

#: Waits before the 2nd, 3rd, … attempt; after the last entry, hourly.
RETRY_SCHEDULE = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
)
RETRY_AFTER_CAP = timedelta(hours=6)


def retry_delay(delivery_id: str, attempts_done: int) -> timedelta:
    """The wait after `attempts_done` failed attempts, with up to 10% deterministic jitter."""
    base = RETRY_SCHEDULE[min(attempts_done - 1, len(RETRY_SCHEDULE) - 1)]
    digest = hashlib.blake2b(f"{delivery_id}:{attempts_done}".encode(), digest_size=8).digest()
    return base + base * (0.1 * int.from_bytes(digest, "big") / 2**64)


def _retry_after(response: httpx2.Response, now: datetime) -> timedelta | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        wait = timedelta(seconds=int(value))
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        wait = when - now
    return min(max(wait, timedelta(0)), RETRY_AFTER_CAP)


class CallbackDispatcher:
    def __init__(
        self,
        store: Store,
        client: httpx2.AsyncClient,
        *,
        clock: Clock,
        node: str,
        lease: timedelta = timedelta(seconds=60),
        concurrency: int = 16,
        max_attempts: int = 24,
        timeout: float = 10.0,
        poll_interval: timedelta = timedelta(seconds=2),
    ) -> None:
        self.store = store
        self.client = client
        self.clock = clock
        self.node = node
        self.lease = lease
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.poll_interval = poll_interval
        self._wake = anyio.Event()
        self._changed = anyio.Event()
        self._inflight: set[str] = set()
        self._sleeping_until: datetime | None = None
        self._listeners: list[Callable[[Delivery], None]] = []

    # --- hooks ----------------------------------------------------------------------------
    def on_events(self, events: Sequence[Event]) -> None:
        """Engine listener: new callback events may have created deliveries."""
        if any(e.type in CALLBACK_EVENTS for e in events):
            self.wake()

    def add_listener(self, listener: Callable[[Delivery], None]) -> None:
        """Hear of each attempt this node records, with the delivery as it now stands
        (delivered, pending again, or failed). Must not block."""
        self._listeners.append(listener)

    def on_hint(self, hint: Hint) -> None:
        """Engine hint listener: another node wrote events (perhaps with deliveries) or made
        one pending again; any node may send them."""
        if hint.due or hint.owners or hint.all_owners:
            self.wake()

    def wake(self) -> None:
        self._wake.set()
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def is_idle(self) -> bool:
        until = self._sleeping_until
        return (
            until is not None
            and until > self.clock.now()
            and not self._inflight
            and not self._wake.is_set()
        )

    async def wait_idle(self) -> None:
        while not self.is_idle():
            await self._changed.wait()

    # --- the loop -------------------------------------------------------------------------
    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            while True:
                self._wake = anyio.Event()
                now = self.clock.now()
                try:
                    deadline = await self._step(tg, now)
                except StoreError as exc:
                    log.error("callback step failed, retrying in 1s: %s", exc)
                    deadline = now + timedelta(seconds=1)
                await self._sleep(deadline)

    async def _step(self, tg: anyio.abc.TaskGroup, now: datetime) -> datetime:
        free = self.concurrency - len(self._inflight)
        if free > 0:
            for delivery in await self.store.claim_deliveries(self.node, now, free, self.lease):
                self._inflight.add(delivery.id)
                tg.start_soon(self._send, delivery, name=f"callback {delivery.id}")
        candidates = [now + self.poll_interval]
        due = await self.store.next_delivery_due_at()
        if due is not None and due > now:
            candidates.append(due)
        return min(candidates)

    async def _sleep(self, deadline: datetime) -> None:
        if self._wake.is_set():
            return
        try:
            async with anyio.create_task_group() as tg:

                async def sleeper() -> None:
                    self._sleeping_until = deadline
                    self._notify()
                    await self.clock.sleep_until(deadline)
                    tg.cancel_scope.cancel()

                async def waiter() -> None:
                    await self._wake.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(sleeper)
                tg.start_soon(waiter)
        finally:
            self._sleeping_until = None
            self._notify()

    # --- one attempt ----------------------------------------------------------------------
    async def _send(self, delivery: Delivery) -> None:
        try:
            await self._attempt(delivery)
        except StoreError as exc:
            log.error("recording callback %s failed: %s", delivery.id, exc)
        finally:
            self._inflight.discard(delivery.id)
            self.wake()

    async def _attempt(self, delivery: Delivery) -> None:
        now = self.clock.now()
        secrets = (
            await self.store.callback_secrets(delivery.task_id, now) if delivery.task_id else []
        )
        if not secrets:
            await self._record(delivery, now, False, None, None, "no signing secret left")
            return
        stamp = int(now.timestamp())
        headers = {
            "content-type": "application/json",
            "webhook-id": delivery.id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign(secrets, delivery.id, stamp, delivery.body),
            "x-wakecall-event": str(delivery.event_type),
        }
        status: int | None = None
        wait: timedelta | None = None
        try:
            response = await self.client.post(
                delivery.url, content=delivery.body.encode(), headers=headers, timeout=self.timeout
            )
        except UnsafeURL as exc:
            await self._record(delivery, self.clock.now(), False, None, None, str(exc))
            return
        except httpx2.HTTPError as exc:
            error = f"{type(exc).__name__} sending to {delivery.url}: {exc or 'no detail'}"
        else:
            status = response.status_code
            if 200 <= status < 300:
                await self._record(delivery, self.clock.now(), True, None, status, None)
                return
            if status == 410:
                await self._record(
                    delivery,
                    self.clock.now(),
                    False,
                    None,
                    status,
                    "410 Gone: receiver asked to stop",
                )
                return
            error = f"HTTP {status} from {delivery.url}"
            if 300 <= status < 400:
                error += (
                    f" (redirects are not followed; Location: {response.headers.get('location')})"
                )
            wait = _retry_after(response, self.clock.now())
        done = delivery.attempts + 1
        now = self.clock.now()
        retry_at = None
        if done < self.max_attempts:
            retry_at = now + (wait if wait is not None else retry_delay(delivery.id, done))
        else:
            error += f"; gave up after {done} attempts"
        await self._record(delivery, now, False, retry_at, status, error)

    async def _record(
        self,
        delivery: Delivery,
        now: datetime,
        delivered: bool,
        retry_at: datetime | None,
        status: int | None,
        error: str | None,
    ) -> None:
        # The attempt happened: keep trying to record it (the database may be restarting)
        # for half the claim's lease, after which another node may take the delivery over.
        give_up = anyio.current_time() + self.lease.total_seconds() / 2
        delay = 0.1
        while True:
            try:
                with anyio.CancelScope(shield=True):
                    updated = await self.store.finish_delivery(
                        self.node,
                        delivery.id,
                        now,
                        delivered=delivered,
                        retry_at=retry_at,
                        status_code=status,
                        error=error,
                    )
                break
            except StoreError as exc:
                if anyio.current_time() + delay > give_up:
                    raise
                log.warning("recording callback %s failed, retrying: %s", delivery.id, exc)
                await anyio.sleep(delay)
                delay = min(delay * 2, 5.0)
        if updated is not None:
            for listener in list(self._listeners):
                try:
                    listener(updated)
                except Exception:  # a listener's bug must not stop the callbacks
                    log.exception("delivery listener %r failed", listener)
        if not delivered and retry_at is None:
            log.warning(
                "callback %s to %s dead-lettered: %s",
                delivery.id,
                delivery.url,
                error,
                extra={"action": "callback_failed", "task_id": delivery.task_id},
            )
