"""A small agent loop against wakecall, written with the MCP SDK's client.

It does what an agent would: create a task, run it once and read how the run went, change
its schedule, and delete it, printing each step.

Run it (it starts `python -m wakecall serve` over stdio, with a throwaway store):

    python examples/agent_loop.py
    python examples/agent_loop.py --store ~/wakecall-demo.db   # keep the store
    python examples/agent_loop.py --legacy                     # the handshake generation

or point it at a running HTTP server (`wakecall serve --http`, loopback, no tokens):

    python examples/agent_loop.py --url http://127.0.0.1:8765/mcp
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters, types


def say(text: str) -> None:
    print(f"agent: {text}", flush=True)


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool; stop with its message if it failed (the message says how to fix it)."""
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        text = " ".join(c.text for c in result.content if isinstance(c, types.TextContent))
        raise RuntimeError(text)
    assert result.structured_content is not None
    return result.structured_content


async def wait_for_run(client: Client, run_id: str) -> dict[str, Any]:
    """Long-poll the event inbox until the run has finished; its event."""
    after = 0
    with anyio.fail_after(60):
        while True:
            page = await call(client, "get_events", after=after, wait=10)
            for event in page["events"]:
                if event["run_id"] == run_id:
                    return event
            after = page["cursor"]


async def main(server: StdioServerParameters | str, *, mode: str = "auto") -> dict[str, Any]:
    """Drive one task through its life on `server`; what the agent saw, step by step."""
    seen: dict[str, Any] = {}
    async with Client(server, mode=mode) as client:
        info = client.server_info
        say(f"connected to {info.name if info else 'a server'} ({client.protocol_version})")
        seen["protocol_version"] = client.protocol_version
        seen["tools"] = sorted(t.name for t in (await client.list_tools()).tools)
        say(f"it offers {len(seen['tools'])} tools: {', '.join(seen['tools'])}")

        preview = await call(client, "preview_schedule", schedule="0 9 * * MON-FRI", count=2)
        say(f"'0 9 * * MON-FRI' means: {preview['description']}")

        task = await call(
            client,
            "create_task",
            name="check the nightly build",
            schedule="0 9 * * MON-FRI",
            timezone="Europe/Paris",
            action={"type": "wakeup", "reason": "look at the nightly build"},
            metadata={"example": "agent_loop"},
        )
        seen["created"] = task
        say(f"created {task['id']}: {task['schedule_description']}")
        say(f"  next fires: {', '.join(f['local'] for f in task['next_fires'])}")

        run = await call(client, "run_now", task_id=task["id"])
        say(f"asked for a run now: {run['id']} is {run['status']}")
        event = await wait_for_run(client, run["id"])
        seen["event"] = event
        say(f"event {event['cursor']}: {event['type']}")

        runs = (await call(client, "list_runs", task_id=task["id"]))["runs"]
        seen["runs"] = runs
        for r in runs:
            say(f"  run {r['id']}: {r['status']} ({r['trigger']}), output {r['output']}")

        patched = await call(
            client,
            "patch_schedule",
            task_id=task["id"],
            schedule={"type": "daily", "times": ["08:30"], "weekdays": ["MON", "THU"]},
            name="check the build twice a week",
        )
        seen["patched"] = patched
        say(f"changed it to: {patched['schedule_description']}, named '{patched['name']}'")

        seen["deleted"] = await call(client, "delete", task_id=task["id"])
        say(f"deleted {task['id']}")

        mistake = await client.call_tool("get_task", {"task_id": task["id"]})
        seen["after_delete"] = " ".join(
            c.text for c in mistake.content if isinstance(c, types.TextContent)
        )
        say(f"asking for it again: {seen['after_delete']}")
        seen["remaining"] = (await call(client, "list_tasks"))["tasks"]
        say(f"{len(seen['remaining'])} tasks left")
    return seen


def _stdio(store: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "wakecall", "serve", "--store", store]
    )


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="SQLite file for the spawned server (default: temporary)")
    parser.add_argument(
        "--url", help="a Streamable HTTP server instead, e.g. http://127.0.0.1:8765/mcp"
    )
    parser.add_argument("--legacy", action="store_true", help="use the initialize handshake")
    args = parser.parse_args()
    mode = "legacy" if args.legacy else "auto"
    if args.url:
        anyio.run(partial(main, args.url, mode=mode))
    elif args.store:
        anyio.run(partial(main, _stdio(str(Path(args.store).expanduser())), mode=mode))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            anyio.run(partial(main, _stdio(str(Path(tmp) / "wakecall.db")), mode=mode))


if __name__ == "__main__":
    _cli()
