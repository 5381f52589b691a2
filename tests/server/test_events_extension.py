"""The Events extension through the SDK's in-memory client: `events/list`, `events/poll` and
`events/stream` read the owner's durable log in the position space of `get_events`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest
from mcp import Client
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.shared.exceptions import MCPError

from support.events_client import SUBSCRIPTION_ID_KEY, Notes, request
from wakecall.engine import EngineConfig
from wakecall.server import Runtime, build_server, open_runtime
from wakecall.settings import Settings
from wakecall.testing import FakeClock, run_until_idle

COMPLETED = "task.run.completed"


@dataclass
class Agent:
    client: Client
    rt: Runtime
    clock: FakeClock
    notes: Notes

    async def call(self, tool: str, **args: Any) -> dict[str, Any]:
        result = await self.client.call_tool(tool, args)
        assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
        assert result.structured_content is not None
        return result.structured_content

    async def task(self, name: str = "report", **metadata: str) -> str:
        made = await self.call(
            "create_task",
            name=name,
            schedule="on demand",
            action={"type": "noop"},
            metadata=metadata,
        )
        return str(made["id"])

    async def run(self, task_id: str) -> None:
        await self.call("run_now", task_id=task_id)
        await run_until_idle(self.rt.engine)

    async def poll(self, **params: Any) -> dict[str, Any]:
        with anyio.fail_after(10):
            return await request(self.client, "events/poll", {"name": COMPLETED, **params})


@contextmanager
def as_owner(owner: str) -> Iterator[None]:
    token = AccessToken(token=f"t-{owner}", client_id=owner, scopes=["wakecall"])
    reset = auth_context_var.set(AuthenticatedUser(token))
    try:
        yield
    finally:
        auth_context_var.reset(reset)


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Agent]:
    clock = FakeClock()
    settings = Settings(store=str(tmp_path / "w.db"), events_heartbeat=timedelta(seconds=0.2))
    config = EngineConfig(poll_interval=timedelta(hours=1), prune_every=timedelta(days=1))
    with anyio.fail_after(30):
        async with open_runtime(settings, clock=clock, config=config) as rt:
            await run_until_idle(rt.engine)
            notes = Notes()
            async with Client(build_server(rt), extensions=[notes]) as client:
                yield Agent(client, rt, clock, notes)


async def test_events_list_names_every_event_type_with_modes_and_schemas(agent: Agent) -> None:
    with anyio.fail_after(10):
        listed = await request(agent.client, "events/list", {})
    by_name = {e["name"]: e for e in listed["events"]}
    assert set(by_name) == {
        "task.run.completed",
        "task.run.failed",
        "task.run.missed",
        "task.run.skipped",
        "task.run.stale",
        "task.expired",
        "task.paused",
        "wakeup.fired",
    }
    for entry in by_name.values():
        assert set(entry["delivery"]) >= {"poll", "push"}
        assert set(entry["inputSchema"]["properties"]) == {"taskIds", "metadata"}
        jsonschema.Draft202012Validator.check_schema(entry["payloadSchema"])
    # The data of real events validates against the payload schema of their type.
    await agent.run(await agent.task())
    wakeup = await agent.call("schedule_wakeup", **{"in": "10s", "reason": "look again"})
    agent.clock.advance(timedelta(seconds=11))
    await run_until_idle(agent.rt.engine)
    for name in (COMPLETED, "wakeup.fired"):
        with anyio.fail_after(10):
            answer = await request(agent.client, "events/poll", {"name": name, "cursor": "0"})
        (event,) = answer["events"]
        jsonschema.validate(event["data"], by_name[name]["payloadSchema"])
    assert wakeup["wakeup_id"]


async def test_a_poll_from_now_then_from_its_cursor_gets_what_came_since(agent: Agent) -> None:
    task_id = await agent.task()
    await agent.run(task_id)
    first = await agent.poll(cursor=None)
    assert first["events"] == [] and not first["truncated"] and not first["hasMore"]
    assert first["nextPollMs"] > 0
    assert first["cursor"] == str((await agent.call("get_events", after=0))["cursor"])
    await agent.run(task_id)
    answer = await agent.poll(cursor=first["cursor"])
    (event,) = answer["events"]
    assert event["name"] == COMPLETED and event["data"]["task"]["id"] == task_id
    assert event["eventId"].startswith("evt_") and event["timestamp"].endswith("Z")
    page = await agent.call("get_events", after=int(first["cursor"]))
    assert answer["cursor"] == str(page["cursor"])  # one position space
    assert (await agent.poll(cursor=answer["cursor"]))["events"] == []
    # The same event has the same id however it is read again.
    assert (await agent.poll(cursor=first["cursor"]))["events"][0]["eventId"] == event["eventId"]


async def test_arguments_narrow_a_poll_to_tasks_and_metadata(agent: Agent) -> None:
    ops = await agent.task("ops job", team="ops")
    web = await agent.task("web job", team="web")
    await agent.run(ops)
    await agent.run(web)
    by_ids = await agent.poll(cursor="0", arguments={"taskIds": [web]})
    assert [e["data"]["task"]["id"] for e in by_ids["events"]] == [web]
    by_meta = await agent.poll(cursor="0", arguments={"metadata": {"team": "ops"}})
    assert [e["data"]["task"]["id"] for e in by_meta["events"]] == [ops]
    # Read to the end either way: the cursor moves past what did not match.
    assert by_ids["cursor"] == by_meta["cursor"]


async def test_max_events_pages_with_has_more(agent: Agent) -> None:
    task_id = await agent.task()
    for _ in range(3):
        await agent.run(task_id)
    page = await agent.poll(cursor="0", maxEvents=2)
    assert len(page["events"]) == 2 and page["hasMore"] and page["nextPollMs"] == 0
    rest = await agent.poll(cursor=page["cursor"], maxEvents=2)
    assert len(rest["events"]) == 1 and not rest["hasMore"]


async def test_foreign_stale_and_aged_cursors_are_truncated_to_what_can_be_served(
    agent: Agent,
) -> None:
    task_id = await agent.task()
    await agent.run(task_id)
    latest = (await agent.poll(cursor=None))["cursor"]
    foreign = await agent.poll(cursor="999999")
    assert foreign["truncated"] and foreign["cursor"] == latest and foreign["events"] == []
    agent.clock.advance(timedelta(hours=2))
    await agent.run(task_id)
    aged = await agent.poll(cursor="0", maxAgeMs=3_600_000)
    assert aged["truncated"] and len(aged["events"]) == 1
    # Retention deletes the first event: a cursor before it is stale.
    await agent.rt.engine.store.prune(
        agent.clock.now(),
        runs_per_task=100,
        run_max_age=timedelta(days=30),
        event_max_age=timedelta(hours=1),
    )
    stale = await agent.poll(cursor="0")
    assert stale["truncated"] and len(stale["events"]) == 1


async def test_bad_requests_get_the_sketchs_errors(agent: Agent) -> None:
    with pytest.raises(MCPError) as unknown:
        await agent.poll(name="task.run.exploded", cursor=None)
    assert unknown.value.code == -32011 and unknown.value.data == {"kind": "event"}
    with pytest.raises(MCPError) as bad_cursor:
        await agent.poll(cursor="yesterday")
    assert bad_cursor.value.code == -32602 and "null to start from now" in bad_cursor.value.message
    with pytest.raises(MCPError) as bad_arguments:
        await agent.poll(cursor=None, arguments={"severity": "P1"})
    assert bad_arguments.value.code == -32602 and "taskIds" in bad_arguments.value.message


async def test_an_owner_never_reads_another_owners_events(agent: Agent) -> None:
    with as_owner("alice"):
        await agent.run(await agent.task())
    with as_owner("bob"):
        assert (await agent.poll(cursor="0"))["events"] == []
    with as_owner("alice"):
        assert len((await agent.poll(cursor="0"))["events"]) == 1


async def test_a_stream_pushes_events_and_heartbeats_until_cancelled(agent: Agent) -> None:
    task_id = await agent.task()
    await agent.run(task_id)
    notes = agent.notes
    with anyio.fail_after(20):
        await stream_until_cancelled(agent, task_id)
    # Cancelled: nothing more is pushed.
    count = len(notes.of("notifications/events/event"))
    await agent.run(task_id)
    await anyio.sleep(0.3)  # longer than a heartbeat: a stream still open would have sent
    assert len(notes.of("notifications/events/event")) == count


async def stream_until_cancelled(agent: Agent, task_id: str) -> None:
    notes = agent.notes
    async with anyio.create_task_group() as tg:
        tg.start_soon(request, agent.client, "events/stream", {"name": COMPLETED, "cursor": "0"})
        await notes.wait_for(lambda: notes.of("notifications/events/event"))
        (active,) = notes.of("notifications/events/active")
        assert active["cursor"] == "0" and active["truncated"] is False
        stream_id = active["_meta"][SUBSCRIPTION_ID_KEY]
        (replayed,) = notes.of("notifications/events/event")
        assert replayed["name"] == COMPLETED and replayed["_meta"][SUBSCRIPTION_ID_KEY] == stream_id
        await agent.run(task_id)
        await notes.wait_for(lambda: len(notes.of("notifications/events/event")) == 2)
        live = notes.of("notifications/events/event")[1]
        assert int(live["cursor"]) > int(replayed["cursor"])
        # Quiet: a heartbeat carries the position read to.
        await notes.wait_for(lambda: notes.of("notifications/events/heartbeat"))
        assert notes.of("notifications/events/heartbeat")[0]["cursor"] == live["cursor"]
        tg.cancel_scope.cancel()
