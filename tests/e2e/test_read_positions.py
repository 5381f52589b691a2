"""Read positions survive restarts: `get_events` without `after`, and the hints, continue where
each reader (an owner and the client's declared name) left off, whichever server process or
node answers, and the first hint after a start says what arrived while the reader was away."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import Implementation

from support.postgres import POSTGRES_URL, database

HOST = Implementation(name="host-one", version="1")
OTHER_HOST = Implementation(name="host-two", version="1")


async def completed_events(wakecall: Any, client: Client, count: int) -> dict[str, Any]:
    """Read (without `after`) until `count` completed runs have been read; the last page."""
    seen = 0
    with anyio.fail_after(20):
        while True:
            page = await wakecall.call(client, "get_events", {"wait": 5})
            seen += sum(1 for e in page["events"] if e["type"] == "task.run.completed")
            if seen >= count:
                return page


async def run_once(wakecall: Any, client: Client, task_id: str) -> None:
    await wakecall.call(client, "run_now", {"task_id": task_id})


async def test_stdio_servers_in_sequence_continue_each_hosts_reading(wakecall: Any) -> None:
    store = wakecall.new_store()
    async with Client(wakecall.stdio_params(store=store), client_info=HOST) as client:
        task = await wakecall.call(
            client,
            "create_task",
            {"name": "report", "schedule": "on demand", "action": {"type": "noop"}},
        )
        await run_once(wakecall, client, task["id"])
        first = await completed_events(wakecall, client, 1)
    # The next session of the same host starts a new server: nothing read is new again.
    async with Client(wakecall.stdio_params(store=store), client_info=HOST) as client:
        page = await wakecall.call(client, "get_events", {})
        assert page["events"] == [] and page["cursor"] == first["cursor"]
        listed = await wakecall.call(client, "list_tasks", {})
        assert listed.get("hint") is None
    # Another host, with a server of its own, reads from its own position and makes news.
    async with Client(wakecall.stdio_params(store=store), client_info=OTHER_HOST) as other:
        page = await wakecall.call(other, "get_events", {})
        assert [e["type"] for e in page["events"]] == ["task.run.completed"]
        await run_once(wakecall, other, task["id"])
        await completed_events(wakecall, other, 1)
    # The first host comes back: its first answer says what arrived while it was away.
    async with Client(wakecall.stdio_params(store=store), client_info=HOST) as client:
        listed = await wakecall.call(client, "list_tasks", {})
        assert listed["hint"].startswith("While you were away, 1 new event arrived")
        assert f"after cursor {first['cursor']}" in listed["hint"]
        page = await wakecall.call(client, "get_events", {})
        assert len(page["events"]) == 1 and page["events"][0]["cursor"] > first["cursor"]
        assert (await wakecall.call(client, "list_tasks", {})).get("hint") is None


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="needs WAKECALL_TEST_POSTGRES_URL")
async def test_postgres_a_reader_continues_on_another_node(wakecall: Any) -> None:
    assert POSTGRES_URL is not None
    async with database(POSTGRES_URL) as db:
        flags = ("--pg-schema", db.schema, "--poll-interval", "1s", "--pg-pool", "4")
        async with (
            wakecall.http_server(*flags, "--node", "a", store=db.url) as node_a,
            wakecall.http_server(*flags, "--node", "b", store=db.url) as node_b,
        ):
            async with Client(
                wakecall.http_transport(node_a.url, "tok-alice"), client_info=HOST
            ) as client:
                task = await wakecall.call(
                    client,
                    "create_task",
                    {"name": "report", "schedule": "on demand", "action": {"type": "noop"}},
                )
                await run_once(wakecall, client, task["id"])
                first = await completed_events(wakecall, client, 1)
                await run_once(wakecall, client, task["id"])
            async with Client(
                wakecall.http_transport(node_b.url, "tok-alice"), client_info=HOST
            ) as client:
                # Node b has never served this reader: the position comes from the store.
                page = await completed_events(wakecall, client, 1)
                assert all(e["cursor"] > first["cursor"] for e in page["events"])
                assert (await wakecall.call(client, "get_events", {}))["events"] == []
            # Bob reads his own log: none of Alice's events, whichever node.
            async with Client(
                wakecall.http_transport(node_b.url, "tok-bob"), client_info=HOST
            ) as bob:
                assert (await wakecall.call(bob, "get_events", {}))["events"] == []
