"""MCP Events webhook subscriptions, end to end in process: subscribed through the SDK's
client, delivered over HTTPS on loopback to a receiver that verifies every POST with
`standardwebhooks`, through the durable delivery queue, across a restart of the server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from support.hooks import HookReceiver, new_whsec, serve_hooks
from support.loopback import real_time_clock
from support.postgres import POSTGRES_URL
from support.tls import LoopbackTLS, make_loopback_tls
from support.webhook_agent import (
    COMPLETED,
    a_task,
    open_agent,
    open_postgres_agents,
)


@pytest.fixture
def tls(tmp_path: Path) -> LoopbackTLS:
    return make_loopback_tls(tmp_path)


@pytest.fixture
async def receiver(tls: LoopbackTLS) -> AsyncIterator[HookReceiver]:
    async with serve_hooks(tls) as rec:
        yield rec


async def test_a_subscription_is_challenged_then_receives_each_event_signed(
    tmp_path: Path, tls: LoopbackTLS, receiver: HookReceiver
) -> None:
    clock = real_time_clock()
    async with open_agent(tmp_path, tls, clock) as agent:
        task_id = await a_task(agent)
        granted = await agent.subscribe(receiver, ttlMs=3_600_000)
        assert granted["id"].startswith("sub_") and not granted["truncated"]
        assert granted["refreshBefore"].endswith("Z")
        (challenge,) = receiver.challenges
        assert challenge["x-mcp-subscription-id"] == granted["id"]
        assert challenge["webhook-id"].startswith("msg_verification_")
        await agent.run(task_id)
        await receiver.wait_for(lambda: len(receiver.events) == 1)
        await agent.settle()
        (headers,) = receiver.attempts
        (body,) = receiver.bodies()
        assert headers["x-mcp-subscription-id"] == granted["id"]
        assert headers["webhook-id"] == body["eventId"]
        assert body["name"] == COMPLETED and body["data"]["task"]["id"] == task_id
        # The body's cursor is a position of get_events, and of events/poll.
        page = await agent.call("get_events", after=0)
        assert body["cursor"] == str(page["events"][-1]["cursor"])
        polled = await agent.ext("events/poll", name=COMPLETED, cursor="0")
        assert polled["events"][0]["eventId"] == body["eventId"]
        # Refreshing (the same key) needs no new challenge and reports how delivery goes.
        refreshed = await agent.subscribe(receiver, ttlMs=7_200_000)
        assert refreshed["id"] == granted["id"] and len(receiver.challenges) == 1
        assert refreshed["cursor"] == body["cursor"] and refreshed["truncated"] is False
        assert refreshed["deliveryStatus"]["active"] is True
        assert refreshed["deliveryStatus"]["lastError"] is None


async def test_deliveries_survive_a_restart_and_nothing_is_lost(
    tmp_path: Path, tls: LoopbackTLS, receiver: HookReceiver
) -> None:
    clock = real_time_clock()
    receiver.script = [503]  # the first delivery fails: it is retried after the restart
    async with open_agent(tmp_path, tls, clock) as agent:
        task_id = await a_task(agent)
        await agent.subscribe(receiver)
        await agent.run(task_id)
        await receiver.wait_for(lambda: len(receiver.attempts) == 1)
        await agent.run(task_id)  # a second event waits behind the first
        await agent.settle()
    async with open_agent(tmp_path, tls, clock) as agent:
        clock.advance(timedelta(seconds=10))  # the retry is due
        await agent.settle()
        await receiver.wait_for(lambda: len(receiver.events) == 2)
        await agent.run(task_id)  # and the subscription goes on after the restart
        await receiver.wait_for(lambda: len(receiver.events) == 3)
        page = await agent.call("get_events", after=0)
    assert [b["cursor"] for b in receiver.bodies()] == [str(e["cursor"]) for e in page["events"]]
    # The retry carried the same webhook-id as the attempt that failed.
    assert receiver.attempts[0]["webhook-id"] == receiver.attempts[1]["webhook-id"]
    assert receiver.rejected == 0


async def test_arguments_filter_what_a_subscription_receives(
    tmp_path: Path, tls: LoopbackTLS, receiver: HookReceiver
) -> None:
    async with open_agent(tmp_path, tls, real_time_clock()) as agent:
        ops = await a_task(agent, team="ops")
        web = await a_task(agent, team="web")
        await agent.subscribe(receiver, arguments={"metadata": {"team": "web"}})
        await agent.run(ops)
        await agent.run(web)
        await receiver.wait_for(lambda: len(receiver.events) == 1)
        await agent.run(ops)
        await agent.run(web)
        await receiver.wait_for(lambda: len(receiver.events) == 2)
    assert {b["data"]["task"]["id"] for b in receiver.bodies()} == {web}


async def test_410_ends_a_subscription_and_a_dead_letter_suspends_it(
    tmp_path: Path, tls: LoopbackTLS, receiver: HookReceiver
) -> None:
    clock = real_time_clock()
    async with open_agent(tmp_path, tls, clock) as agent:
        task_id = await a_task(agent)
        gone = await agent.subscribe(receiver)
        receiver.script = [410]
        await agent.run(task_id)
        await receiver.wait_for(lambda: len(receiver.attempts) == 1)
        await agent.settle()
        with anyio.fail_after(10):
            while await agent.rt.engine.store.get_subscription("local", gone["id"]) is not None:
                await agent.rt.feeder.step()
        await agent.run(task_id)
        await agent.settle()
        assert len(receiver.attempts) == 1  # stopped for good
        # A 413 gives the event up at once and suspends delivery until a refresh.
        again = await agent.subscribe(receiver)
        receiver.script = [413]
        await agent.run(task_id)
        await receiver.wait_for(lambda: len(receiver.attempts) == 2)
        await agent.settle()
        await agent.rt.feeder.step()
        failed = (await agent.call("list_deliveries", status="failed"))["deliveries"][0]
        assert "413" in failed["last_error"]
        refreshed = await agent.subscribe(receiver)
        # The event given up was skipped: the refresh that resumes delivery says so.
        assert refreshed["id"] == again["id"] and refreshed["truncated"] is True
        assert refreshed["deliveryStatus"] == {
            "active": False,
            "lastDeliveryAt": None,
            "lastError": "http_4xx",
            "failedSince": refreshed["deliveryStatus"]["failedSince"],
        }
        await agent.run(task_id)
        await receiver.wait_for(lambda: len(receiver.events) == 1)


async def test_subscribe_refuses_bad_endpoints_and_secrets_with_the_sketchs_codes(
    tmp_path: Path, tls: LoopbackTLS, receiver: HookReceiver
) -> None:
    async with open_agent(tmp_path, tls, real_time_clock()) as agent:

        async def error_of(**delivery: Any) -> MCPError:
            with pytest.raises(MCPError) as caught:
                await agent.ext("events/subscribe", name=COMPLETED, delivery=delivery)
            return caught.value

        plain = await error_of(
            mode="webhook", url=f"http://127.0.0.1:{receiver.port}/hook", secret=new_whsec()
        )
        assert plain.code == -32602 and "https" in plain.message
        short = await error_of(mode="webhook", url=receiver.url(), secret="whsec_c2hvcnQ=")
        assert short.code == -32602 and "24 to 64" in short.message
        private = await error_of(mode="webhook", url="https://10.1.2.3/hook", secret=new_whsec())
        assert private.code == -32602
        receiver.echo = False
        refused = await error_of(mode="webhook", url=receiver.url(), secret=receiver.secret)
        assert refused.code == -32015 and refused.data == {"reason": "challenge_failed"}
        with pytest.raises(MCPError) as missing:
            await agent.ext("events/unsubscribe", name=COMPLETED, delivery={"url": receiver.url()})
        assert missing.value.code == -32011 and missing.value.data == {"kind": "subscription"}


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="needs WAKECALL_TEST_POSTGRES_URL")
async def test_postgres_a_subscription_made_on_one_node_gets_events_of_another(
    tmp_path: Path, tls: LoopbackTLS, receiver: HookReceiver
) -> None:
    assert POSTGRES_URL is not None
    clock = real_time_clock()
    with anyio.fail_after(60):
        async with open_postgres_agents(tmp_path, tls, clock, POSTGRES_URL) as (node_a, node_b):
            task_id = await a_task(node_b)
            await node_a.subscribe(receiver)
            for _ in range(3):
                await node_b.run(task_id)
            await receiver.wait_for(lambda: len(receiver.events) == 3)
            page = await node_a.call("get_events", after=0)
    assert [b["cursor"] for b in receiver.bodies()] == [str(e["cursor"]) for e in page["events"]]
    assert len(receiver.attempts) == 3  # each once, whichever node sent it
