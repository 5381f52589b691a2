"""The callback dispatcher on its own: a real SQLite store, real HTTP servers on loopback, a fake
clock for the leases and the retry times (real time only bounds the network)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpcore2
import httpx2
import pytest

from support.loopback import Receiver, real_time_clock
from support.records import add_task, make_task
from wakecall.delivery.callbacks import SECRETS_MAX_AGE, CallbackDispatcher
from wakecall.delivery.signing import new_secret, verify
from wakecall.errors import StoreError
from wakecall.models import Delivery, DeliveryStatus, EventType, Task
from wakecall.net import GuardedClient, OutboundPolicy, build_http_client
from wakecall.store import NewEvent, SQLiteStore
from wakecall.store.base import DeliveryOutcome
from wakecall.testing import FakeClock

LEASE = timedelta(seconds=30)


class WatchedStore(SQLiteStore):
    """Counts the dispatcher's store calls; can hold or fail `finish_deliveries`."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.calls: Counter[str] = Counter()
        self.claimed: list[list[str]] = []
        self.recorded: list[list[str]] = []
        self.hold_finish: anyio.Event | None = None
        self.fail_finish = 0
        self.changed = anyio.Event()

    def _note(self, name: str) -> None:
        self.calls[name] += 1
        self.poke()

    def poke(self) -> None:
        """Let `wait_for` look again."""
        self.changed.set()
        self.changed = anyio.Event()

    async def wait_for(self, predicate: Any) -> None:
        while not predicate():
            await self.changed.wait()

    async def claim_deliveries(
        self, node: str, now: datetime, limit: int, lease: timedelta
    ) -> list[Delivery]:
        found = await super().claim_deliveries(node, now, limit, lease)
        self.claimed.append([d.id for d in found])
        self._note("claim_deliveries")
        return found

    async def callback_secrets(self, task_id: str, now: datetime) -> list[str]:
        self._note("callback_secrets")
        return await super().callback_secrets(task_id, now)

    async def callback_secrets_of(
        self, task_ids: Sequence[str], now: datetime
    ) -> dict[str, list[str]]:
        self._note("callback_secrets_of")
        return await super().callback_secrets_of(task_ids, now)

    async def finish_deliveries(
        self, node: str, outcomes: Sequence[DeliveryOutcome]
    ) -> list[Delivery | None]:
        self._note("finish_deliveries")
        if self.fail_finish:
            self.fail_finish -= 1
            raise StoreError("the database is restarting")
        if self.hold_finish is not None:
            hold, self.hold_finish = self.hold_finish, None
            await hold.wait()
        self.recorded.append([o.delivery_id for o in outcomes])
        return await super().finish_deliveries(node, outcomes)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[WatchedStore]:
    s = WatchedStore(tmp_path / "w.db")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def clock() -> FakeClock:
    return real_time_clock()  # receivers check the signature's timestamp against real time


async def _pending(
    store: SQLiteStore, clock: FakeClock, url: str, secret: str | None = None
) -> tuple[Task, str]:
    """A task with `url` as its callback URL and a secret, and one delivery due now."""
    task = make_task(callback_url=url, created_at=clock.now(), updated_at=clock.now())
    await add_task(store, task)
    secret = secret or new_secret()
    await store.add_callback_secret(task.id, secret, clock.now(), None)
    await store.append_events(
        clock.now(), [NewEvent(EventType.TASK_EXPIRED, task.id, None, {"reason": "test"})]
    )
    return task, secret


def _dispatcher(
    store: SQLiteStore,
    clock: FakeClock,
    client: httpx2.AsyncClient,
    **settings: Any,
) -> CallbackDispatcher:
    settings.setdefault("lease", LEASE)
    settings.setdefault("poll_interval", timedelta(hours=1))  # only wakes move it
    return CallbackDispatcher(store, client, clock=clock, node="n1", **settings)


@asynccontextmanager
async def _running(
    dispatcher: CallbackDispatcher,
) -> AsyncIterator[tuple[CallbackDispatcher, list[Delivery]]]:
    """Run the dispatcher; the list fills with each attempt recorded."""
    recorded: list[Delivery] = []

    def record(delivery: Delivery) -> None:
        recorded.append(delivery)
        if isinstance(dispatcher.store, WatchedStore):
            dispatcher.store.poke()  # a waiter on the store looks at `recorded` again

    dispatcher.add_listener(record)
    async with anyio.create_task_group() as tg:
        tg.start_soon(dispatcher.run)
        yield dispatcher, recorded
        tg.cancel_scope.cancel()


@asynccontextmanager
async def _client(policy: OutboundPolicy | None = None) -> AsyncIterator[GuardedClient]:
    async with build_http_client(policy or OutboundPolicy(allow_loopback=True)) as client:
        yield client


async def _delivery(store: SQLiteStore, task: Task) -> Delivery:
    (found,) = await store.list_deliveries(None, task_id=task.id)
    return found


async def test_a_batch_takes_one_claim_one_secrets_read_and_fewer_records(
    store: WatchedStore, clock: FakeClock, receiver: Receiver
) -> None:
    for _ in range(8):
        _, secret = await _pending(store, clock, receiver.url())
        receiver.secrets.append(secret)
    # The first record waits until every delivery has been sent: the attempts that end
    # meanwhile are recorded together after it.
    store.hold_finish = hold = anyio.Event()
    async with _client() as client, _running(_dispatcher(store, clock, client, concurrency=4)):
        with anyio.fail_after(10):
            await receiver.wait_for(lambda: len(receiver.bodies) == 8)
            hold.set()
            await store.wait_for(lambda: sum(map(len, store.recorded)) == 8)
    assert [len(ids) for ids in store.claimed if ids] == [8]
    assert store.calls["callback_secrets_of"] == 1 and store.calls["callback_secrets"] == 0
    assert 2 <= store.calls["finish_deliveries"] < 8
    recorded = sorted(i for ids in store.recorded for i in ids)
    assert recorded == sorted(i for ids in store.claimed for i in ids)
    assert {d.status for d in await store.list_deliveries(None)} == {DeliveryStatus.DELIVERED}


async def test_a_delivery_in_flight_when_its_claim_ran_out_is_not_sent_again_by_its_node(
    store: WatchedStore, clock: FakeClock, receiver: Receiver
) -> None:
    held, secret = await _pending(store, clock, receiver.url("/slow"))
    receiver.secrets.append(secret)
    async with _client() as client, _running(_dispatcher(store, clock, client)) as (disp, _):
        with anyio.fail_after(10):
            await receiver.wait_for(lambda: len(receiver.attempts) == 1)
            # The receiver holds the request past the lease: the delivery is due for a claim
            # again, and this node, looking for work, claims it.
            held_id = (await _delivery(store, held)).id
            clock.advance(LEASE + timedelta(seconds=1))
            disp.wake()
            await store.wait_for(lambda: held_id in store.claimed[-1])
            # A later delivery, sent after whatever that claim started.
            later, secret = await _pending(store, clock, receiver.url("/slow"))
            receiver.secrets.append(secret)
            later_id = (await _delivery(store, later)).id
            disp.wake()
            await receiver.wait_for(
                lambda: later_id in [a["webhook-id"] for a in receiver.attempts]
            )
            receiver.slow_gate.set()
            await disp.wait_idle()
            await store.wait_for(lambda: sum(map(len, store.recorded)) >= 2)
    assert Counter(a["webhook-id"] for a in receiver.attempts) == {held_id: 1, later_id: 1}
    for task in (held, later):
        done = await _delivery(store, task)
        assert done.status == DeliveryStatus.DELIVERED and done.attempts == 1


@asynccontextmanager
async def _trickling_server() -> AsyncIterator[str]:
    """A receiver that answers 200 at once, then its body one byte every 50 ms (for 10 s)."""

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            received = b""
            while b"\r\n\r\n" not in received:
                received += await stream.receive()
            await stream.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(200):
                await anyio.sleep(0.05)
                await stream.send(b"1\r\na\r\n")
            await stream.send(b"0\r\n\r\n")

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield f"http://127.0.0.1:{port}/hook"
        tg.cancel_scope.cancel()


async def test_an_attempt_ends_within_its_timeout_even_while_the_answer_keeps_coming(
    store: WatchedStore, clock: FakeClock
) -> None:
    # Each read gets a byte well within the timeout; the attempt as a whole must not outlast it,
    # or it could outlast the claim's lease while another node sends the delivery again.
    async with _trickling_server() as url, _client() as client:
        task, _ = await _pending(store, clock, url)
        dispatcher = _dispatcher(store, clock, client, timeout=0.5)
        async with _running(dispatcher) as (_, recorded):
            with anyio.fail_after(5):
                await store.wait_for(lambda: recorded)
    (attempt,) = recorded
    assert attempt.id == (await _delivery(store, task)).id
    assert attempt.status == DeliveryStatus.PENDING and attempt.attempts == 1
    assert attempt.last_error == f"no complete answer from {url} within 0.5s"
    assert attempt.next_attempt_at is not None and attempt.next_attempt_at > clock.now()


async def test_a_delivery_that_waited_too_long_for_a_sender_is_left_to_the_next_claim(
    store: WatchedStore, clock: FakeClock, receiver: Receiver
) -> None:
    slow, slow_secret = await _pending(store, clock, receiver.url("/slow"))
    clock.advance(timedelta(seconds=1))  # claimed in this order
    waiting, secret = await _pending(store, clock, receiver.url())
    receiver.secrets += [slow_secret, secret]
    async with (
        _client() as client,
        _running(_dispatcher(store, clock, client, concurrency=1)) as (
            disp,
            _,
        ),
    ):
        with anyio.fail_after(10):
            await receiver.wait_for(lambda: len(receiver.attempts) == 1)
            assert [len(ids) for ids in store.claimed] == [2]
            # The one sender is busy past the time a send of the waiting delivery could still
            # end, and be recorded, within its lease.
            clock.advance((LEASE - timedelta(seconds=disp.timeout)) / 2 + timedelta(seconds=1))
            receiver.slow_gate.set()
            await disp.wait_idle()
            assert len(receiver.attempts) == 1
            left = await _delivery(store, waiting)
            assert left.status == DeliveryStatus.PENDING and left.attempts == 0
            clock.advance(LEASE)  # its claim is over: claimed and sent again
            disp.wake()
            await disp.wait_idle()
    assert len(receiver.attempts) == 2 and len(receiver.bodies) == 2
    for task in (slow, waiting):
        done = await _delivery(store, task)
        assert done.status == DeliveryStatus.DELIVERED and done.attempts == 1


async def test_a_secret_rotated_while_a_delivery_waits_signs_it(
    store: WatchedStore, clock: FakeClock, receiver: Receiver
) -> None:
    _, slow_secret = await _pending(store, clock, receiver.url("/slow"))
    clock.advance(timedelta(seconds=1))
    task, old = await _pending(store, clock, receiver.url())
    async with (
        _client() as client,
        _running(_dispatcher(store, clock, client, concurrency=1)) as (
            disp,
            _,
        ),
    ):
        with anyio.fail_after(10):
            await receiver.wait_for(lambda: len(receiver.attempts) == 1)
            # Read with the claim, the old secret is replaced (no grace) while the delivery
            # waits for the sender, which starts it later than secrets read with a claim are
            # used.
            new = new_secret()
            await store.add_callback_secret(task.id, new, clock.now(), None)
            clock.advance(SECRETS_MAX_AGE + timedelta(milliseconds=1))
            receiver.secrets += [slow_secret, new]  # the receiver knows only the new one
            receiver.slow_gate.set()
            await disp.wait_idle()
    assert len(receiver.bodies) == 2
    headers = receiver.attempts[1]
    body = (await _delivery(store, task)).body.encode()
    signature = headers["webhook-signature"]
    args = (headers["webhook-id"], headers["webhook-timestamp"], body, signature)
    assert len(signature.split()) == 1
    assert verify(new, *args, now=float(headers["webhook-timestamp"]))
    assert not verify(old, *args, now=float(headers["webhook-timestamp"]))


async def test_each_sender_keeps_its_connection_alive(
    store: WatchedStore, clock: FakeClock, receiver: Receiver
) -> None:
    for _ in range(12):
        _, secret = await _pending(store, clock, receiver.url())
        receiver.secrets.append(secret)
    async with _client() as client, _running(_dispatcher(store, clock, client, concurrency=2)):
        with anyio.fail_after(10):
            await receiver.wait_for(lambda: len(receiver.bodies) == 12)
    assert len(set(receiver.peers)) <= 2
    # The request is the client's: its User-Agent, the body's length, no redirect followed.
    assert receiver.attempts[0]["user-agent"].startswith("wakecall")
    assert receiver.attempts[0]["content-type"] == "application/json"


async def test_the_outgoing_guard_still_judges_every_callback_connection(
    store: WatchedStore, clock: FakeClock, receiver: Receiver
) -> None:
    # Stored directly (a URL accepted before the operator closed loopback, say): refused at
    # connect time, dead-lettered at once, and nothing reaches the receiver.
    task, _ = await _pending(store, clock, receiver.url())
    async with _client(OutboundPolicy()) as client:
        async with _running(_dispatcher(store, clock, client)) as (_, recorded):
            with anyio.fail_after(10):
                await store.wait_for(lambda: recorded)
    (attempt,) = recorded
    assert attempt.status == DeliveryStatus.FAILED and attempt.attempts == 1
    assert attempt.last_error is not None and "loopback" in attempt.last_error
    assert receiver.attempts == []
    assert (await _delivery(store, task)).status == DeliveryStatus.FAILED


async def test_a_client_on_another_transport_is_used_as_it_is(
    store: WatchedStore, clock: FakeClock
) -> None:
    seen: list[httpx2.Request] = []

    async def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx2.Response(503, headers={"Retry-After": "120"})
        return httpx2.Response(204)

    task, secret = await _pending(store, clock, "https://hooks.example/cb")
    transport = httpx2.MockTransport(answer)
    async with httpx2.AsyncClient(transport=transport) as client:
        async with _running(_dispatcher(store, clock, client)) as (disp, recorded):
            with anyio.fail_after(10):
                await store.wait_for(lambda: recorded)
                assert recorded[0].next_attempt_at == clock.now() + timedelta(seconds=120)
                clock.advance(timedelta(seconds=120))
                disp.wake()
                await store.wait_for(lambda: len(recorded) == 2)
    assert recorded[1].status == DeliveryStatus.DELIVERED and recorded[1].last_status == 204
    request = seen[1]
    assert request.headers["webhook-id"] == recorded[1].id
    assert verify(
        secret,
        request.headers["webhook-id"],
        request.headers["webhook-timestamp"],
        request.content,
        request.headers["webhook-signature"],
        now=float(request.headers["webhook-timestamp"]),
    )
    assert (await _delivery(store, task)).attempts == 2


async def test_attempts_that_ended_are_recorded_when_the_dispatcher_stops(
    store: WatchedStore, clock: FakeClock, receiver: Receiver
) -> None:
    task, secret = await _pending(store, clock, receiver.url())
    receiver.secrets.append(secret)
    store.fail_finish = 1  # the first record fails; the dispatcher stops while it waits
    async with _client() as client, _running(_dispatcher(store, clock, client)):
        with anyio.fail_after(10):
            await store.wait_for(lambda: store.calls["finish_deliveries"] == 1)
    assert len(receiver.bodies) == 1
    done = await _delivery(store, task)
    assert done.status == DeliveryStatus.DELIVERED and done.attempts == 1


async def test_settings_that_cannot_work_are_refused(store: WatchedStore, clock: FakeClock) -> None:
    client: Any = None
    with pytest.raises(
        ValueError, match=r"lease \(10s\) must be longer than the timeout of one attempt \(10s\)"
    ):
        _dispatcher(store, clock, client, lease=timedelta(seconds=10), timeout=10.0)
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        _dispatcher(store, clock, client, concurrency=0)
    with pytest.raises(ValueError, match="timeout must be positive"):
        _dispatcher(store, clock, client, timeout=0)


class CountingBackend(httpcore2.AsyncNetworkBackend):
    """The usual network backend, counting connections and the writes on them."""

    def __init__(self) -> None:
        self.backend = httpcore2.AnyIOBackend()
        self.connects = 0
        self.writes: list[int] = []

    async def connect_tcp(self, host: str, port: int, **options: Any) -> Any:
        stream = await self.backend.connect_tcp(host, port, **options)
        self.connects += 1
        backend = self

        class Counted(httpcore2.AsyncNetworkStream):
            async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
                return await stream.read(max_bytes, timeout)

            async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
                backend.writes.append(len(buffer))
                await stream.write(buffer, timeout)

            async def aclose(self) -> None:
                await stream.aclose()

            def get_extra_info(self, info: str) -> Any:
                return stream.get_extra_info(info)

        return Counted()


async def test_a_sender_writes_each_request_at_once_on_its_kept_connection(
    store: WatchedStore, clock: FakeClock, receiver: Receiver
) -> None:
    counting = CountingBackend()
    for _ in range(3):
        _, secret = await _pending(store, clock, receiver.url())
        receiver.secrets.append(secret)
    async with _client() as client:
        client.guarded_transport.backend.tcp = counting
        async with _running(_dispatcher(store, clock, client, concurrency=1)) as (disp, _):
            with anyio.fail_after(10):
                await receiver.wait_for(lambda: len(receiver.bodies) == 3)
                await disp.wait_idle()
    assert counting.connects == 1 and len(counting.writes) == 3
    assert len(set(receiver.peers)) == 1


@dataclass
class Served:
    """What the one-request-per-connection receiver served: each request's body length."""

    bodies: list[int] = field(default_factory=list)
    changed: anyio.Event = field(default_factory=anyio.Event)

    async def wait_for(self, count: int) -> None:
        while len(self.bodies) < count:
            await self.changed.wait()


@asynccontextmanager
async def _one_request_per_connection_server() -> AsyncIterator[tuple[str, Served]]:
    """A receiver that answers 200 as if the connection stayed open, then closes it (as a server
    does when its keep-alive timeout passes)."""
    served = Served()

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            received = b""
            while b"\r\n\r\n" not in received:
                received += await stream.receive()
            head, _, body = received.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(body) < length:
                body += await stream.receive()
            await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        served.bodies.append(len(body))
        served.changed.set()
        served.changed = anyio.Event()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield f"http://127.0.0.1:{port}/hook", served
        tg.cancel_scope.cancel()


async def test_a_kept_connection_the_receiver_closed_is_not_used_again(
    store: WatchedStore, clock: FakeClock
) -> None:
    async with _one_request_per_connection_server() as (url, served), _client() as client:
        await _pending(store, clock, url)
        async with _running(_dispatcher(store, clock, client, concurrency=1)) as (disp, recorded):
            with anyio.fail_after(10):
                await store.wait_for(lambda: recorded)
                await served.wait_for(1)  # and closed: the sender's connection is dead
                await _pending(store, clock, url)
                disp.wake()
                await store.wait_for(lambda: len(recorded) == 2)
    assert [d.status for d in recorded] == [DeliveryStatus.DELIVERED] * 2, recorded[1].last_error
    assert len(served.bodies) == 2
