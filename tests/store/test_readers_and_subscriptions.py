"""The store's contracts for reaching the agent beyond the inbox, over every backend: read
positions, the pruned horizon, webhook subscriptions (and their deliveries) and the Tasks
extension's handles."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from support.records import T0, add_task, make_task
from wakecall.errors import LimitReached
from wakecall.models import DeliveryStatus, EnvelopeType, EventType
from wakecall.models.subscriptions import Subscription, SubscriptionRoute, ToolTask
from wakecall.store import NewEvent, Store
from wakecall.store.base import DeliveryOutcome, NewSubscriptionDelivery

GRACE = timedelta(hours=1)


def subscription(owner: str = "alice", **changes: object) -> Subscription:
    base = Subscription(
        id=f"sub_{owner}_1",
        owner=owner,
        url="https://hooks.example.com/in",
        name="task.run.completed",
        arguments={"taskIds": ["tsk_1"]},
        secret="whsec_AAAA",
        old_secret=None,
        old_secret_until=None,
        cursor=0,
        acked_through=0,
        pending_delivery=None,
        active=True,
        refresh_before=T0 + timedelta(hours=1),
        created_at=T0,
        updated_at=T0,
        verified_at=T0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def events_for(store: Store, owner: str, count: int) -> list[int]:
    task = make_task(owner)
    await add_task(store, task)
    written = await store.append_events(
        T0, [NewEvent(EventType.RUN_STALE, task.id, None, {"n": i}) for i in range(count)]
    )
    return [e.cursor for e in written]


async def test_a_read_position_is_per_reader_and_never_moves_back(store: Store) -> None:
    assert await store.read_position("alice", "claude-code") == 0
    assert await store.save_read_position("alice", "claude-code", 7, T0) == 7
    assert await store.save_read_position("alice", "claude-code", 5, T0) == 7
    assert await store.save_read_position("alice", "codex", 3, T0) == 3
    assert await store.read_position("alice", "claude-code") == 7
    assert await store.read_position("alice", "codex") == 3
    assert await store.read_position("bob", "claude-code") == 0


async def test_reader_news_is_the_owners_newest_cursor_and_the_readers_position(
    store: Store,
) -> None:
    assert await store.reader_news("alice", "claude-code") == (0, 0)
    cursors = await events_for(store, "alice", 3)
    await events_for(store, "bob", 2)
    await store.save_read_position("alice", "claude-code", cursors[0], T0)
    assert await store.reader_news("alice", "claude-code") == (cursors[-1], cursors[0])
    assert await store.reader_news("alice", "codex") == (cursors[-1], 0)
    assert await store.reader_news("bob", "claude-code") == (await store.latest_cursor("bob"), 0)


async def test_count_events_counts_the_owners_newer_events_up_to_a_limit(store: Store) -> None:
    cursors = await events_for(store, "alice", 5)
    await events_for(store, "bob", 2)
    assert await store.count_events("alice", after=0, limit=100) == 5
    assert await store.count_events("alice", after=cursors[1], limit=100) == 3
    assert await store.count_events("alice", after=0, limit=2) == 2
    assert await store.count_events("alice", after=cursors[-1], limit=100) == 0


async def test_pruning_events_moves_each_owners_horizon(store: Store) -> None:
    alice = await events_for(store, "alice", 3)
    bob = await events_for(store, "bob", 1)
    assert await store.event_horizon("alice") == 0
    await store.prune(
        T0 + timedelta(days=10),
        runs_per_task=10,
        run_max_age=timedelta(days=30),
        event_max_age=timedelta(days=1),
    )
    assert await store.event_horizon("alice") == alice[-1]
    assert await store.event_horizon("bob") == bob[-1]
    assert await store.list_events("alice") == []
    # A later prune with nothing older keeps the horizon where it was.
    await store.prune(
        T0 + timedelta(days=11),
        runs_per_task=10,
        run_max_age=timedelta(days=30),
        event_max_age=timedelta(days=1),
    )
    assert await store.event_horizon("alice") == alice[-1]


async def test_a_subscription_is_created_then_refreshed_in_place(store: Store) -> None:
    sub = subscription()
    stored, created = await store.save_subscription(sub, T0, secret_grace=GRACE, max_per_owner=10)
    assert created and stored == sub
    assert await store.endpoint_verified("alice", sub.url)
    assert not await store.endpoint_verified("bob", sub.url)
    assert await store.get_subscription("bob", sub.id) is None
    later = T0 + timedelta(minutes=30)
    refreshed, created = await store.save_subscription(
        replace(sub, secret="whsec_BBBB", refresh_before=later + timedelta(hours=1), cursor=99),
        later,
        secret_grace=GRACE,
        max_per_owner=10,
    )
    assert not created
    assert refreshed.secret == "whsec_BBBB" and refreshed.old_secret == "whsec_AAAA"
    assert refreshed.old_secret_until == later + GRACE
    assert refreshed.refresh_before == later + timedelta(hours=1)
    assert refreshed.cursor == 0  # where it was fed to stays
    assert refreshed.secrets_at(later) == ["whsec_BBBB", "whsec_AAAA"]
    assert refreshed.secrets_at(later + GRACE) == ["whsec_BBBB"]
    assert await store.get_subscription("alice", sub.id) == refreshed


async def test_an_owner_cannot_hold_more_subscriptions_than_allowed(store: Store) -> None:
    await store.save_subscription(subscription(), T0, secret_grace=GRACE, max_per_owner=1)
    with pytest.raises(LimitReached):
        await store.save_subscription(
            subscription(id="sub_other"), T0, secret_grace=GRACE, max_per_owner=1
        )
    assert await store.get_subscription("alice", "sub_other") is None
    # Refreshing the one held is not a new one.
    _, created = await store.save_subscription(
        subscription(), T0, secret_grace=GRACE, max_per_owner=1
    )
    assert not created


async def test_feeding_a_subscription_is_guarded_and_makes_its_delivery(store: Store) -> None:
    cursors = await events_for(store, "alice", 2)
    sub, _ = await store.save_subscription(subscription(), T0, secret_grace=GRACE, max_per_owner=10)
    ((due, last),) = await store.subscriptions_to_feed(T0, 10)
    assert due == sub and last is None
    fed = replace(sub, cursor=cursors[0], pending_delivery="msg_d1")
    delivery = NewSubscriptionDelivery(
        "msg_d1", "evt_1", cursors[0], "task.run.stale", None, '{"eventId": "evt_1"}'
    )
    assert await store.advance_subscription(sub, fed, delivery, now=T0)
    # A second feeder working from the same state loses, and writes nothing.
    assert not await store.advance_subscription(sub, replace(sub, cursor=5), now=T0)
    # Its delivery is pending: the subscription waits.
    assert await store.subscriptions_to_feed(T0, 10) == []
    (pending,) = await store.list_deliveries("alice")
    assert pending.status == DeliveryStatus.PENDING and pending.url == sub.url
    routes = await store.subscription_routes([pending.id, "msg_unknown"], T0)
    assert set(routes) == {pending.id}
    assert routes[pending.id].subscription_id == sub.id
    assert routes[pending.id].message_id == "evt_1"
    assert routes[pending.id].secrets == ["whsec_AAAA"]
    # Delivered: the subscription is due again, with the delivery's outcome.
    (claimed,) = await store.claim_deliveries("n1", T0, 10, timedelta(seconds=30))
    await store.finish_deliveries("n1", [DeliveryOutcome(claimed.id, T0, True, status_code=200)])
    ((again, last),) = await store.subscriptions_to_feed(T0, 10)
    assert again.cursor == cursors[0] and again.pending_delivery == "msg_d1"
    assert last is not None and last.status == DeliveryStatus.DELIVERED


async def test_unsubscribing_drops_pending_deliveries(store: Store) -> None:
    cursors = await events_for(store, "alice", 1)
    sub, _ = await store.save_subscription(subscription(), T0, secret_grace=GRACE, max_per_owner=10)
    delivery = NewSubscriptionDelivery("msg_d1", "evt_1", cursors[0], "task.run.stale", None, "{}")
    await store.advance_subscription(
        sub, replace(sub, cursor=cursors[0], pending_delivery="msg_d1"), delivery, now=T0
    )
    assert not await store.delete_subscription("bob", sub.id)
    assert await store.delete_subscription("alice", sub.id)
    assert await store.list_deliveries("alice") == []
    routes = await store.subscription_routes(["msg_d1"], T0)
    assert routes == {}


async def test_expired_and_long_suspended_subscriptions_are_the_ones_to_end(store: Store) -> None:
    async def save(sub: Subscription, at: datetime = T0) -> Subscription:
        stored, _ = await store.save_subscription(sub, at, secret_grace=GRACE, max_per_owner=10)
        return stored

    expiring = await save(subscription(id="sub_b_ttl"))
    await save(subscription(id="sub_c_quiet", refresh_before=None))
    failing = await save(subscription(id="sub_a_failing", refresh_before=None))
    suspended = replace(failing, active=False, last_error="http_5xx", suspended_at=T0)
    assert await store.advance_subscription(failing, suspended, now=T0)
    assert await store.get_subscription("alice", failing.id) == suspended
    later = T0 + timedelta(hours=2)

    async def to_end(suspended_before: datetime) -> list[str]:
        return [s.id for s in await store.subscriptions_to_end(later, suspended_before, 10)]

    # Expired; or granted no expiry and suspended at or before the cut-off.
    assert await to_end(T0 - timedelta(seconds=1)) == [expiring.id]
    assert await to_end(T0) == [failing.id, expiring.id]
    assert [s.id for s in await store.subscriptions_to_end(later, T0, 1)] == [failing.id]
    assert await store.subscriptions_to_end(T0, T0 - timedelta(seconds=1), 10) == []
    # Neither an expired one nor a suspended one is fed, even before it is ended.
    assert [s.id for s, _ in await store.subscriptions_to_feed(later, 10)] == ["sub_c_quiet"]
    # A refresh makes it active again: no longer suspended, not to end.
    resumed = await save(subscription(id="sub_a_failing", refresh_before=None), T0)
    assert resumed.active and resumed.suspended_at is None and resumed.last_error == "http_5xx"
    assert await to_end(T0) == [expiring.id]


async def test_ending_a_subscription_drops_its_deliveries_and_queues_its_farewell(
    store: Store,
) -> None:
    cursors = await events_for(store, "alice", 1)
    sub, _ = await store.save_subscription(subscription(), T0, secret_grace=GRACE, max_per_owner=10)
    delivery = NewSubscriptionDelivery("msg_d1", "evt_1", cursors[0], "task.run.stale", None, "{}")
    fed = replace(sub, cursor=cursors[0], pending_delivery="msg_d1")
    await store.advance_subscription(sub, fed, delivery, now=T0)
    read = await store.get_subscription("alice", sub.id)
    assert read is not None
    farewell = NewSubscriptionDelivery(
        "msg_bye", "msg_terminated_1", 0, "terminated", None, '{"type":"terminated"}', sub.secret
    )
    # Refreshed since it was read: it is not ended.
    refreshed, _ = await store.save_subscription(
        replace(sub, refresh_before=T0 + timedelta(hours=3)),
        T0 + timedelta(minutes=1),
        secret_grace=GRACE,
        max_per_owner=10,
    )
    assert not await store.end_subscription(read, farewell, now=T0)
    assert await store.end_subscription(refreshed, farewell, now=T0 + timedelta(hours=4))
    assert await store.get_subscription("alice", sub.id) is None
    assert not await store.end_subscription(refreshed, farewell, now=T0 + timedelta(hours=4))
    # Its event's delivery is dropped; the farewell is queued, naming the subscription, and
    # signed with the secret it carries (the subscription's is gone).
    (queued,) = await store.list_deliveries("alice")
    assert queued.id == "msg_bye" and queued.event_type == EnvelopeType.TERMINATED
    assert queued.status == DeliveryStatus.PENDING and queued.url == sub.url
    assert queued.next_attempt_at == T0 + timedelta(hours=4)
    route = (await store.subscription_routes(["msg_bye"], T0))["msg_bye"]
    assert route == SubscriptionRoute(sub.id, "msg_terminated_1", [sub.secret], farewell=True)
    # A new subscription of that id drops the farewell not sent yet: it would tell of it.
    _, created = await store.save_subscription(
        subscription(), T0, secret_grace=GRACE, max_per_owner=10
    )
    assert created and await store.list_deliveries("alice") == []


async def test_a_tool_task_is_found_by_its_owner_until_it_expires(store: Store) -> None:
    task = ToolTask("wtk_secret", "alice", "run_1", T0, T0 + timedelta(hours=1))
    await store.create_tool_task(task)
    assert await store.get_tool_task("alice", task.id, T0) == task
    assert await store.get_tool_task("bob", task.id, T0) is None
    assert await store.get_tool_task("alice", task.id, T0 + timedelta(hours=1)) is None
    # Creating another later drops the owner's expired handles.
    later = ToolTask(
        "wtk_other", "alice", "run_2", T0 + timedelta(hours=2), T0 + timedelta(hours=3)
    )
    await store.create_tool_task(later)
    assert await store.get_tool_task("alice", later.id, later.created_at) == later
