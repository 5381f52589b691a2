"""The command line next to a running server: both use one store, each sees what the other
does, and the server runs what the command line queues."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters, types

pytestmark = pytest.mark.slow

#: Bounds a whole test: server start-up, every command and call, and shutdown.
TEST_TIMEOUT = 120


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    with anyio.fail_after(15):
        result = await client.call_tool(tool, arguments)
    text = "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))
    assert not result.is_error, f"{tool} failed: {text}"
    assert result.structured_content is not None
    return result.structured_content


async def wait_for_event(client: Client, event_type: str, task_id: str) -> dict[str, Any]:
    """Long-poll `get_events` until an event of this type for this task arrives."""
    after = 0
    with anyio.fail_after(30):
        while True:
            page = await call(client, "get_events", {"after": after, "wait": 5})
            for event in page["events"]:
                if event["type"] == event_type and event["task_id"] == task_id:
                    return event
            after = page["cursor"]


async def test_the_command_line_and_a_running_server_share_one_store(cli: Any) -> None:
    params = StdioServerParameters(
        command=cli.executable,
        args=["serve", "--store", cli.store],
        env=cli.env(),
        cwd=str(cli.tmp_path),
    )
    with anyio.fail_after(TEST_TIMEOUT):
        async with Client(params) as client:
            added = await cli.arun("tasks", "add", "from the cli", "@daily", "--id", "c", "--noop")
            assert added.code == 0, str(added)
            listed = await call(client, "list_tasks", {})
            assert [t["id"] for t in listed["tasks"]] == ["c"]

            paused = await cli.arun("tasks", "pause", "c", "--note", "maintenance")
            assert paused.code == 0, str(paused)
            seen = await call(client, "get_task", {"task_id": "c"})
            assert (seen["status"], seen["pause_note"]) == ("paused", "maintenance")

            created = await call(
                client,
                "create_task",
                {"name": "from the agent", "schedule": "@daily", "action": {"type": "noop"}},
            )
            shown = await cli.arun("tasks", "list", "--json")
            assert [t["id"] for t in shown.json()["tasks"]] == ["c", created["id"]]

            queued = await cli.arun("tasks", "run", "c", "--json")
            run_id = queued.json()["id"]
            event = await wait_for_event(client, "task.run.completed", "c")
            assert event["run_id"] == run_id
            runs = await cli.arun("runs", "c", "--json")
            assert [(r["id"], r["status"], r["trigger"]) for r in runs.json()["runs"]] == [
                (run_id, "success", "manual")
            ]

            resumed = await cli.arun("tasks", "resume", "c", "--json")
            assert resumed.json()["status"] == "active"
            assert (await call(client, "get_task", {"task_id": "c"}))["status"] == "active"


TASKS_FILE = """
[[tasks]]
id = "heartbeat"
name = "heartbeat"
schedule = "@every 1h"
action = { type = "noop" }
"""


async def test_a_server_applies_its_tasks_file_at_start_and_again_without_change(
    cli: Any,
) -> None:
    path = cli.write("tasks.toml", TASKS_FILE)
    params = StdioServerParameters(
        command=cli.executable,
        args=["serve", "--store", cli.store, "--tasks-file", str(path)],
        env=cli.env(),
        cwd=str(cli.tmp_path),
    )
    with anyio.fail_after(TEST_TIMEOUT):
        for _ in range(2):  # the second start finds the task as the file says: unchanged
            async with Client(params) as client:
                listed = await call(client, "list_tasks", {})
                assert [(t["id"], t["name"]) for t in listed["tasks"]] == [
                    ("heartbeat", "heartbeat")
                ]


def test_a_server_with_a_bad_tasks_file_does_not_start_and_says_where(cli: Any) -> None:
    path = cli.write("bad.toml", TASKS_FILE.replace('"@every 1h"', '"61 * * * *"'))
    stderr = cli.fails(2, "serve", "--tasks-file", str(path), input="")
    assert "bad.toml:5" in stderr and "nothing was applied" in stderr
    assert cli.task_ids() == []
