"""Signed webhook callbacks with a durable retry queue.

Each event of a task with a `callback_url` is stored with a pending `Delivery` in the same
transaction as the event (see the store). This dispatcher claims due deliveries with a lease,
POSTs them signed per Standard Webhooks (`webhook-id` stable across retries), and records each
attempt: 2xx delivered; 410 stops at once; anything else (or a transport error) is retried on
`RETRY_SCHEDULE` with jitter, honouring `Retry-After`, until `max_attempts`, then dead-lettered
(status `failed`, listed by `list_deliveries`, sent again by `redeliver`). Sends run side by
side (a slow receiver holds one slot, not the queue), and the queue lives in the store, so it
survives restarts and is shared by every node.

On each node the work flows through three parts:

* the claimer takes due deliveries in batches, with a lease (no other node sends them while it
  holds), and reads their tasks' signing secrets in one query per batch;
* `concurrency` senders each POST one delivery at a time over keep-alive connections of their
  own (`delivery.http`), every attempt bounded in total by `timeout`. At most as many claimed
  deliveries wait for a sender as there are senders; one that waited so long that its send
  might not end within the lease is not sent (it is claimed again once the lease is over), so a
  send always ends before its claim does and no other node sends the same delivery meanwhile.
  A delivery this node still has in flight is not sent again if it claims it a second time;
* the recorder writes finished attempts back in batches: one transaction for all the attempts
  that ended while the previous one was being written. An attempt that ended but could not be
  recorded is sent again later (at least once, never lost).

Signing secrets read with a claim are used for sends that start within `SECRETS_MAX_AGE` of the
read; a later send reads them again. So a rotation or a revocation made anywhere (the command
line, another node) applies to every send that starts more than `SECRETS_MAX_AGE` after it.

The same queue carries the deliveries of MCP Events webhook subscriptions (see
`delivery.subscriptions`): those are signed with their subscription's secrets, carry the
event's id as `webhook-id` and the subscription's id as `X-MCP-Subscription-Id`, and a 413
Payload Too Large gives the event up at once (the receiver will never take it). A
subscription's farewell (the `terminated` envelope queued as it was deleted) is signed with the
secret it carries and attempted once.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio
import httpx2
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from wakecall.clock import Clock
from wakecall.errors import StoreError, UnsafeURL
from wakecall.models import CALLBACK_EVENTS, Delivery, Event
from wakecall.models.subscriptions import SubscriptionRoute
from wakecall.spans import Attributes, traced
from wakecall.store.base import DeliveryOutcome, Hint, Store

from .http import HTTP_ERRORS, Poster, poster_for
from .signing import sign

__all__ = ["RETRY_SCHEDULE", "SECRETS_MAX_AGE", "CallbackDispatcher", "retry_delay"]

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

#: How long signing secrets read with a claim may be used for a send before they are read again.
SECRETS_MAX_AGE = timedelta(seconds=1)

#: On shutdown, how long the recorder may take to write the attempts that already ended.
FLUSH_TIMEOUT_S = 5.0


def retry_delay(delivery_id: str, attempts_done: int) -> timedelta:
    """The wait after `attempts_done` failed attempts, with up to 10% deterministic jitter."""
    base = RETRY_SCHEDULE[min(attempts_done - 1, len(RETRY_SCHEDULE) - 1)]
    digest = hashlib.blake2b(f"{delivery_id}:{attempts_done}".encode(), digest_size=8).digest()
    return base + base * (0.1 * int.from_bytes(digest, "big") / 2**64)


def _retry_after(value: str | None, now: datetime) -> timedelta | None:
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


@dataclass(slots=True)
class _Job:
    """A claimed delivery waiting for a sender."""

    delivery: Delivery
    secrets: list[str] | None  # read with the claim; None: read them when sending
    read_at: datetime  # when the claim and the secrets were read
    send_by: datetime  # a send starting later might outlive the lease: it is not started
    route: SubscriptionRoute | None = None  # a subscription's delivery: how it is sent


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
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        if lease.total_seconds() <= timeout:
            raise ValueError(
                f"the lease ({lease.total_seconds():g}s) must be longer than the timeout of one "
                f"attempt ({timeout:g}s), or a claim could end while its delivery is being sent"
            )
        self.store = store
        self.client = client
        self.clock = clock
        self.node = node
        self.lease = lease
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.poll_interval = poll_interval
        # Claimed deliveries, sending or waiting: the senders' work plus as much again.
        self.capacity = 2 * concurrency
        # Claim when at least this much room is free (fewer, larger claims).
        self.min_claim = max(1, concurrency // 4)
        # A send starts at most this long after its claim: the attempt (at most `timeout`)
        # then ends with as long again left of the lease to record it.
        self._send_window = (lease - timedelta(seconds=timeout)) / 2
        self._wake = anyio.Event()
        self._changed = anyio.Event()
        self._inflight: set[str] = set()  # claimed here and not yet recorded or given up
        self._sleeping_until: datetime | None = None
        self._listeners: list[Callable[[Delivery], None]] = []
        self._jobs: MemoryObjectSendStream[_Job] | None = None  # to the senders, while running
        self._finished: list[tuple[Delivery, DeliveryOutcome]] = []
        self._finished_added = anyio.Event()

    # --- hooks ----------------------------------------------------------------------------
    def on_events(self, events: Sequence[Event]) -> None:
        """Engine listener: new callback events may have created deliveries."""
        if any(e.type in CALLBACK_EVENTS for e in events):
            self.wake()

    def add_listener(self, listener: Callable[[Delivery], None]) -> None:
        """Hear of each attempt this node records, with the delivery as it now stands
        (delivered, pending again, or failed). Must not block."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[Delivery], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

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

    # --- the claimer ----------------------------------------------------------------------
    async def run(self) -> None:
        jobs, waiting = anyio.create_memory_object_stream[_Job](math.inf)
        with jobs, waiting:
            self._jobs = jobs
            try:
                async with anyio.create_task_group() as tg:
                    for i in range(self.concurrency):
                        tg.start_soon(self._sender, waiting, name=f"callback sender {i}")
                    tg.start_soon(self._recorder, name="callback recorder")
                    while True:
                        self._wake = anyio.Event()
                        now = self.clock.now()
                        try:
                            deadline = await self._step(now)
                        except StoreError as exc:
                            log.error("callback step failed, retrying in 1s: %s", exc)
                            deadline = now + timedelta(seconds=1)
                        await self._sleep(deadline)
            finally:
                self._jobs = None
                self._inflight.clear()

    async def _step(self, now: datetime) -> datetime:
        room = self.capacity - len(self._inflight)
        if room < self.min_claim:
            return now + self.poll_interval  # woken again when attempts are recorded
        # A read first: the claimer is woken by every batch of events, and most carry no
        # callback, so a claim (a write, queued behind the engine's) would find nothing.
        due = await self.store.next_delivery_due_at()
        if due is not None and due <= now:
            claimed = await self.store.claim_deliveries(self.node, now, room, self.lease)
            # A delivery still in flight here whose claim ran out and that this node claimed
            # again is not sent a second time: the attempt under way records it.
            fresh = [d for d in claimed if d.id not in self._inflight]
            if fresh:
                await self._queue(fresh, now)
            if len(claimed) == room:
                return now + self.poll_interval  # more may be due: woken when there is room
            due = await self.store.next_delivery_due_at()
        candidates = [now + self.poll_interval]
        if due is not None and due > now:
            candidates.append(due)
        return min(candidates)

    async def _queue(self, deliveries: list[Delivery], now: datetime) -> None:
        for delivery in deliveries:
            self._inflight.add(delivery.id)
        task_ids = sorted({d.task_id for d in deliveries if d.task_id})
        secrets: dict[str, list[str]] | None = {}
        routes: dict[str, SubscriptionRoute] = {}
        try:
            routes = await self.store.subscription_routes([d.id for d in deliveries], now)
            if task_ids:
                secrets = await self.store.callback_secrets_of(task_ids, now)
        except StoreError as exc:
            log.warning("reading callback secrets failed, each send reads its own: %s", exc)
            secrets = None
        send_by = now + self._send_window
        assert self._jobs is not None, "claimed while not running"
        for delivery in deliveries:
            mine = None
            route = routes.get(delivery.id)
            if route is not None:
                mine = route.secrets
            elif secrets is not None:
                mine = secrets.get(delivery.task_id, []) if delivery.task_id else []
            self._jobs.send_nowait(_Job(delivery, mine, now, send_by, route))

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

    def _give_up(self, delivery_id: str) -> None:
        """Forget a claimed delivery without recording an attempt: it is claimed again (by any
        node) once its lease ends."""
        self._inflight.discard(delivery_id)
        self.wake()

    # --- the senders ----------------------------------------------------------------------
    async def _sender(self, waiting: MemoryObjectReceiveStream[_Job]) -> None:
        poster = poster_for(self.client, self.timeout)
        try:
            async for job in waiting:
                outcome = await self._traced_attempt(poster, job)
                if outcome is None:
                    self._give_up(job.delivery.id)
                else:
                    self._finished.append((job.delivery, outcome))
                    self._finished_added.set()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(1):
                await poster.aclose()

    async def _traced_attempt(self, poster: Poster, job: _Job) -> DeliveryOutcome | None:
        """`_attempt` in a span (`wakecall.spans`), a child of the delivery's trace context,
        that the request names in its trace headers."""
        delivery = job.delivery
        attributes: Attributes = {
            "wakecall.delivery.id": delivery.id,
            "wakecall.delivery.attempt": delivery.attempts + 1,
            "wakecall.event.type": str(delivery.event_type),
        }
        with traced("wakecall.delivery", delivery.trace, attributes, client=True) as span:
            outcome = await self._attempt(poster, job, span.headers)
            if outcome is None:
                span.ended({"wakecall.delivery.status": "not sent"})
            else:
                ended: dict[str, str | int] = {
                    "wakecall.delivery.status": "delivered" if outcome.delivered else "failed"
                }
                if outcome.status_code is not None:
                    ended["http.response.status_code"] = outcome.status_code
                span.ended(ended, None if outcome.delivered else outcome.error)
        return outcome

    async def _attempt(
        self, poster: Poster, job: _Job, trace_headers: Mapping[str, str]
    ) -> DeliveryOutcome | None:
        """Send one delivery with `trace_headers`; how it went, or None when it was not
        sent."""
        delivery = job.delivery
        now = self.clock.now()
        if now > job.send_by:
            log.info(
                "callback %s waited too long for a sender; it is sent when claimed again",
                delivery.id,
            )
            return None
        secrets, route = job.secrets, job.route
        if secrets is None or now - job.read_at > SECRETS_MAX_AGE:
            try:
                secrets, route = await self._signing(delivery, now)
            except StoreError as exc:
                log.error("reading the secrets of callback %s failed: %s", delivery.id, exc)
                return None
        if not secrets:
            return DeliveryOutcome(delivery.id, now, False, error="no signing secret left")
        stamp = int(now.timestamp())
        message_id = route.message_id if route is not None else delivery.id
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign(secrets, message_id, stamp, delivery.body),
            "x-wakecall-event": str(delivery.event_type),
            **trace_headers,
        }
        if route is not None:
            headers["x-mcp-subscription-id"] = route.subscription_id
        status: int | None = None
        wait: timedelta | None = None
        try:
            # The whole attempt, not each of its phases, is bounded: it must end within the
            # claim's lease.
            with anyio.fail_after(self.timeout):
                answer = await poster.post(delivery.url, delivery.body.encode(), headers)
        except UnsafeURL as exc:
            return DeliveryOutcome(delivery.id, self.clock.now(), False, error=str(exc))
        except HTTP_ERRORS as exc:
            error = f"{type(exc).__name__} sending to {delivery.url}: {exc or 'no detail'}"
        except TimeoutError:
            error = f"no complete answer from {delivery.url} within {self.timeout:g}s"
        except Exception as exc:  # a bug here must not stop every other callback
            log.exception("sending callback %s failed unexpectedly", delivery.id)
            error = f"{type(exc).__name__} sending to {delivery.url}: {exc or 'no detail'}"
        else:
            status = answer.status
            if 200 <= status < 300:
                return DeliveryOutcome(delivery.id, self.clock.now(), True, status_code=status)
            if status == 410:
                return DeliveryOutcome(
                    delivery.id,
                    self.clock.now(),
                    False,
                    status_code=status,
                    error="410 Gone: receiver asked to stop",
                )
            if status == 413 and route is not None:
                return DeliveryOutcome(
                    delivery.id,
                    self.clock.now(),
                    False,
                    status_code=status,
                    error="413 Payload Too Large: the receiver will not take this event",
                )
            error = f"HTTP {status} from {delivery.url}"
            if 300 <= status < 400:
                error += f" (redirects are not followed; Location: {answer.header('location')})"
            wait = _retry_after(answer.header("retry-after"), self.clock.now())
        done = delivery.attempts + 1
        now = self.clock.now()
        retry_at = None
        if route is not None and route.farewell:
            error += "; a farewell is attempted once"
        elif done < self.max_attempts:
            retry_at = now + (wait if wait is not None else retry_delay(delivery.id, done))
        else:
            error += f"; gave up after {done} attempts"
        return DeliveryOutcome(delivery.id, now, False, retry_at, status, error)

    async def _signing(
        self, delivery: Delivery, now: datetime
    ) -> tuple[list[str], SubscriptionRoute | None]:
        """The secrets that sign `delivery` at `now`, and its subscription's route if it has
        one (read from the store)."""
        route = (await self.store.subscription_routes([delivery.id], now)).get(delivery.id)
        if route is not None:
            return route.secrets, route
        if not delivery.task_id:
            return [], None
        return await self.store.callback_secrets(delivery.task_id, now), None

    # --- the recorder ---------------------------------------------------------------------
    async def _recorder(self) -> None:
        batch: list[tuple[Delivery, DeliveryOutcome]] = []
        try:
            while True:
                if not self._finished:
                    self._finished_added = anyio.Event()
                    await self._finished_added.wait()
                    continue
                batch, self._finished = self._finished, []
                await self._record(batch)
                batch = []
        finally:
            # Stopping: record the attempts that ended, or they would be sent again.
            rest, self._finished = batch + self._finished, []
            if rest:
                with anyio.CancelScope(shield=True), anyio.move_on_after(FLUSH_TIMEOUT_S):
                    try:
                        updated = await self.store.finish_deliveries(
                            self.node, [outcome for _, outcome in rest]
                        )
                    except StoreError as exc:
                        log.warning("recording %d callback attempts failed: %s", len(rest), exc)
                    else:
                        self._recorded(rest, updated)

    async def _record(self, batch: list[tuple[Delivery, DeliveryOutcome]]) -> None:
        # The attempts happened: keep trying to record them (the database may be restarting)
        # for half the claim's lease, after which another node may take the deliveries over.
        give_up = anyio.current_time() + self.lease.total_seconds() / 2
        delay = 0.1
        outcomes = [outcome for _, outcome in batch]
        while True:
            try:
                with anyio.CancelScope(shield=True):
                    updated = await self.store.finish_deliveries(self.node, outcomes)
                break
            except StoreError as exc:
                if anyio.current_time() + delay > give_up:
                    log.error("recording %d callback attempts failed: %s", len(batch), exc)
                    for delivery, _ in batch:
                        self._give_up(delivery.id)
                    return
                log.warning("recording %d callback attempts failed, retrying: %s", len(batch), exc)
                await anyio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self._recorded(batch, updated)
        self.wake()  # room for more claims

    def _recorded(
        self, batch: list[tuple[Delivery, DeliveryOutcome]], updated: list[Delivery | None]
    ) -> None:
        for (delivery, outcome), current in zip(batch, updated, strict=True):
            self._inflight.discard(delivery.id)
            if current is not None:
                for listener in list(self._listeners):
                    try:
                        listener(current)
                    except Exception:  # a listener's bug must not stop the callbacks
                        log.exception("delivery listener %r failed", listener)
            if not outcome.delivered and outcome.retry_at is None:
                log.warning(
                    "callback %s to %s dead-lettered: %s",
                    delivery.id,
                    delivery.url,
                    outcome.error,
                    extra={"action": "callback_failed", "task_id": delivery.task_id},
                )
