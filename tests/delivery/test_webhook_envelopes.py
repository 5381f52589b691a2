"""The control envelopes of MCP Events webhook subscriptions (`gap`, `terminated`) and where
delivery starts (`maxAgeMs`, events pruned before they were fed), end to end in process:
subscribed through the SDK's client, POSTed over HTTPS on loopback to a receiver that verifies
every body with `standardwebhooks`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from support.hooks import HookReceiver, serve_hooks
from support.loopback import real_time_clock
from support.postgres import POSTGRES_URL
from support.tls import LoopbackTLS, make_loopback_tls
from support.webhook_agent import (
    COMPLETED,
    Agent,
    a_task,
    open_agent,
    open_postgres_agents,
)
from wakecall.testing import FakeClock


@pytest.fixture
def tls(tmp_path: Path) -> LoopbackTLS:
    return make_loopback_tls(tmp_path)


@pytest.fixture
async def receiver(tls: LoopbackTLS) -> AsyncIterator[HookReceiver]:
    async with serve_hooks(tls) as rec:
        yield rec


async def prune_every_event(agent: Agent) -> None:
    """The scheduler's prune, with events kept for no time at all."""
    await agent.rt.engine.store.prune(
        agent.clock.now() + timedelta(seconds=1),
        runs_per_task=1000,
        run_max_age=timedelta(days=365),
        event_max_age=timedelta(0),
    )


async def newest_cursor(agent: Agent) -> int:
    page = await agent.call("get_events", after=0)
    return int(page["events"][-1]["cursor"])


def envelopes(receiver: HookReceiver, kind: str) -> list[tuple[dict[str, str], Any]]:
    """The attempts that POSTed a `kind` envelope: headers and body."""
    return [
        (headers, body)
        for headers, body in zip(receiver.attempts, receiver.posted, strict=True)
        if body.get("type") == kind
    ]


async def test_events_pruned_before_they_were_fed_are_told_by_a_gap_envelope(
    tmp_path: Path, tls: LoopbackTLS, receiver: HookReceiver
) -> None:
    clock = real_time_clock()
    receiver.script = [503]  # the first event waits for its retry; the next are not fed yet
    async with open_agent(tmp_path, tls, clock) as agent:
        task_id = await a_task(agent)
        granted = await agent.subscribe(receiver)
        for _ in range(3):
            await agent.run(task_id)
        await receiver.wait_for(lambda: len(receiver.attempts) == 1)
        first = (await agent.call("get_events", after=0))["events"][0]
        pruned_through = await newest_cursor(agent)
        await prune_every_event(agent)  # the second and third go before they were fed
        clock.advance(timedelta(seconds=10))  # the retry is due
        await agent.settle()
        await receiver.wait_for(lambda: len(receiver.events) == 2)
        await agent.run(task_id)
        await receiver.wait_for(lambda: len(receiver.events) == 3)
    delivered, gap, after = receiver.bodies()
    assert delivered["cursor"] == str(first["cursor"])
    assert gap == {"type": "gap", "cursor": str(pruned_through)}
    assert int(after["cursor"]) > pruned_through and "eventId" in after
    ((headers, _),) = envelopes(receiver, "gap")
    assert headers["webhook-id"].startswith("msg_gap_")
    assert headers["x-mcp-subscription-id"] == granted["id"]
    assert receiver.rejected == 0


async def test_a_refresh_past_pruned_events_answers_truncated_with_the_horizon(
    tmp_path: Path, tls: LoopbackTLS, receiver: HookReceiver
) -> None:
    clock = real_time_clock()
    receiver.script = [413]  # the first event is given up: delivery is suspended
    async with open_agent(tmp_path, tls, clock) as agent:
        task_id = await a_task(agent)
        await agent.subscribe(receiver)
        await agent.run(task_id)
        await receiver.wait_for(lambda: len(receiver.attempts) == 1)
        await agent.settle()
        await agent.run(task_id)
        await agent.run(task_id)  # not fed: suspended
        pruned_through = await newest_cursor(agent)
        await prune_every_event(agent)
        refreshed = await agent.subscribe(receiver)
        assert refreshed["truncated"] is True and refreshed["cursor"] == str(pruned_through)
        assert refreshed["deliveryStatus"]["active"] is False
        await agent.run(task_id)
        await receiver.wait_for(lambda: len(receiver.events) == 1)
        await agent.settle()
    # Told in the answer, so no gap envelope follows.
    (event,) = receiver.bodies()
    assert "eventId" in event and int(event["cursor"]) > pruned_through
    assert envelopes(receiver, "gap") == []


async def test_a_subscription_that_expired_while_stopped_is_terminated_after_the_restart(
    tmp_path: Path, tls: LoopbackTLS, receiver: HookReceiver
) -> None:
    clock = real_time_clock()
    async with open_agent(tmp_path, tls, clock) as agent:
        task_id = await a_task(agent)
        granted = await agent.subscribe(receiver, ttlMs=60_000)
        assert granted["refreshBefore"] is not None
    clock.advance(timedelta(seconds=61))  # not refreshed in time
    async with open_agent(tmp_path, tls, clock) as agent:
        await agent.settle()
        await receiver.wait_for(lambda: len(receiver.events) == 1)
        ((headers, body),) = envelopes(receiver, "terminated")
        assert headers["webhook-id"].startswith("msg_terminated_")
        assert headers["x-mcp-subscription-id"] == granted["id"]
        assert set(body) == {"type", "error"}
        assert body["error"]["code"] == -32011
        assert body["error"]["data"] == {"kind": "subscription", "reason": "expired"}
        assert "expired" in body["error"]["message"]
        # It no longer exists: nothing else is sent, and unsubscribing finds nothing.
        await agent.run(task_id)
        with pytest.raises(MCPError) as missing:
            await agent.ext("events/unsubscribe", name=COMPLETED, delivery={"url": receiver.url()})
        assert missing.value.code == -32011
    assert len(receiver.attempts) == 1 and receiver.rejected == 0


async def test_a_no_expiry_subscription_suspended_for_a_day_is_terminated_once(
    tmp_path: Path, tls: LoopbackTLS, receiver: HookReceiver
) -> None:
    clock = real_time_clock()
    receiver.clock = clock  # the receiver lives on the server's time, a day ahead
    receiver.script = [413, 503]  # the event is given up; the farewell fails
    async with open_agent(tmp_path, tls, clock) as agent:
        task_id = await a_task(agent)
        granted = await agent.subscribe(receiver, ttlMs=None)
        assert granted["refreshBefore"] is None
        await agent.run(task_id)
        await receiver.wait_for(lambda: len(receiver.attempts) == 1)
        await agent.settle()
        store = agent.rt.engine.store
        clock.advance(timedelta(hours=23, minutes=59))
        await agent.settle()
        assert await store.get_subscription("local", granted["id"]) is not None
        clock.advance(timedelta(minutes=1))
        await agent.settle()
        await receiver.wait_for(lambda: len(receiver.attempts) == 2)
        assert await store.get_subscription("local", granted["id"]) is None
        # Attempted once: its 503 is not retried.
        for _ in range(3):
            clock.advance(timedelta(hours=1))
            await agent.settle()
        failed = (await agent.call("list_deliveries", status="failed"))["deliveries"]
    ((headers, body),) = envelopes(receiver, "terminated")
    assert len(receiver.attempts) == 2 and receiver.rejected == 0
    assert headers["x-mcp-subscription-id"] == granted["id"]
    assert body["error"]["code"] == -32015
    assert body["error"]["data"] == {"reason": "http_4xx"}
    farewell = next(d for d in failed if d["event"] == "terminated")
    assert "attempted once" in farewell["last_error"]


async def test_subscriptions_whose_url_the_guard_refuses_now_end_without_a_post(
    tmp_path: Path, tls: LoopbackTLS, receiver: HookReceiver
) -> None:
    clock = real_time_clock()
    async with open_agent(tmp_path, tls, clock) as agent:
        task_id = await a_task(agent)
        fed = await agent.subscribe(receiver)
        expiring = await agent.subscribe(receiver, ttlMs=60_000, arguments={"taskIds": [task_id]})
    clock.advance(timedelta(seconds=61))
    # Restarted without loopback among the allowed destinations.
    async with open_agent(tmp_path, tls, clock, allow_outbound=()) as agent:
        await agent.run(task_id)
        store = agent.rt.engine.store
        for sub in (fed, expiring):
            assert await store.get_subscription("local", sub["id"]) is None
        # Nothing was queued for the URL: no event, no terminated envelope.
        assert (await agent.call("list_deliveries"))["deliveries"] == []
    assert receiver.attempts == []


async def test_max_age_skips_older_events_for_a_new_subscription(
    tmp_path: Path, tls: LoopbackTLS, receiver: HookReceiver
) -> None:
    # The old events are written ten minutes in the past; the subscription is made at the
    # receiver's time.
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10))
    async with open_agent(tmp_path, tls, clock) as agent:
        old = await a_task(agent, age="old")
        recent = await a_task(agent, age="recent")
        await agent.run(old)
        await agent.run(old)
        clock.advance(timedelta(minutes=10))
        await agent.run(recent)
        granted = await agent.subscribe(receiver, cursor="0", maxAgeMs=300_000)
        assert granted["truncated"] is True
        await receiver.wait_for(lambda: len(receiver.events) == 1)
        # A null cursor already means now: maxAgeMs skips nothing there.
        fresh = await agent.subscribe(
            receiver, cursor=None, maxAgeMs=1, arguments={"metadata": {"age": "old"}}
        )
        assert fresh["truncated"] is False
        await agent.settle()
    (event,) = receiver.bodies()
    assert event["data"]["task"]["id"] == recent


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="needs WAKECALL_TEST_POSTGRES_URL")
async def test_postgres_an_expired_subscription_is_terminated_once_across_nodes(
    tmp_path: Path, tls: LoopbackTLS, receiver: HookReceiver
) -> None:
    assert POSTGRES_URL is not None
    clock = real_time_clock()
    with anyio.fail_after(60):
        async with open_postgres_agents(tmp_path, tls, clock, POSTGRES_URL) as (node_a, node_b):
            granted = await node_a.subscribe(receiver, ttlMs=60_000)
            clock.advance(timedelta(seconds=61))
            # Both nodes' feeders find it over; one of them ends it.
            async with anyio.create_task_group() as tg:
                tg.start_soon(node_a.settle)
                tg.start_soon(node_b.settle)
            await receiver.wait_for(lambda: len(receiver.events) == 1)
            await node_a.settle()
            await node_b.settle()
            assert await node_b.rt.engine.store.get_subscription("local", granted["id"]) is None
    ((headers, body),) = envelopes(receiver, "terminated")
    assert headers["x-mcp-subscription-id"] == granted["id"]
    assert body["error"]["data"]["reason"] == "expired"
    assert len(receiver.attempts) == 1
