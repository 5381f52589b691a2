"""Integers of 2**63 or more reached the store.

`max_runs`, `get_events`' `after` and `patch_schedule` took any integer; 2**63 raised
OverflowError in the store, the agent read "Error executing tool create_task" and the log had a
traceback. Every number a tool takes now has a range, published in its schema and enforced
before the tool runs. This sweeps every numeric field of every tool, nested ones included, with
2**63, -1 and 10**30: each is refused in the house style, naming the field, and nothing is
stored; the largest value each integer's range allows is taken or refused cleanly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from support.agent import ToolAgent, tool_agent
from wakecall.server.tools import TOOLS
from wakecall.server.tools.refusals import resolved_schema

#: Words of the libraries underneath, which a refusal must not show.
INTERNALS = (
    "Error executing",
    "Traceback",
    "OverflowError",
    "Input should",
    "validation error",
    "Arguments",
    "pydantic",
    "type=",
)

#: A valid value of each object that holds a number, to put the number in.
PARENTS: dict[str, dict[str, Any]] = {
    "action": {"type": "webhook", "url": "https://hooks.example.com/run"},
    "condition": {"url": "https://hooks.example.com/check"},
    "retry": {},
    "trigger": {},
    "concurrency": {"key": "crm", "limit": 1},
    "rate_limit": {"key": "crm", "limit": 1, "period": "1m"},
}


def base_call(tool: str, task_id: str) -> dict[str, Any]:
    """Arguments that the tool takes as they are (ids aside)."""
    return {
        "create_task": {"name": "sweep", "schedule": "0 9 * * *"},
        "patch_schedule": {"task_id": task_id},
        "schedule_wakeup": {"in": "15m"},
        "preview_schedule": {"schedule": "0 9 * * *"},
        "cancel_wakeup": {"wakeup_id": task_id},
        "redeliver": {"delivery_id": "msg_unknown"},
        "pause": {"task_id": task_id},
        "resume": {"task_id": task_id},
        "delete": {"task_id": task_id},
        "run_now": {"task_id": task_id},
        "get_task": {"task_id": task_id},
    }.get(tool, {})


def numeric_fields(tool: str) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    """Every field of `tool` that takes a number, as (path, schema)."""

    def walk(node: dict[str, Any], path: tuple[str, ...]) -> Iterator[Any]:
        if node.get("type") in ("integer", "number"):
            yield path, node
        for branch in node.get("anyOf", []):  # a duration: text, or a number of seconds
            yield from walk(branch, path)
        for name, child in node.get("properties", {}).items():
            yield from walk(child, (*path, name))

    yield from walk(resolved_schema(tool), ())


def with_value(tool: str, task_id: str, path: tuple[str, ...], value: Any) -> dict[str, Any]:
    arguments = base_call(tool, task_id)
    if len(path) == 1:
        return {**arguments, path[0]: value}
    parent, field = path
    return {**arguments, parent: {**PARENTS[parent], field: value}}


async def test_every_number_of_every_tool_is_bounded(tmp_path: Path) -> None:
    async with tool_agent(tmp_path) as agent:
        task = await agent.call("create_task", {"name": "target", "schedule": "0 9 * * *"})
        swept = 0
        for entry in TOOLS:
            for path, node in numeric_fields(entry.name):
                for value in (2**63, -1, 10**30):
                    await refused_cleanly(agent, entry.name, task["id"], path, value)
                    swept += 1
                if node.get("type") == "integer":
                    await taken_or_refused_cleanly(
                        agent, entry.name, task["id"], path, node["maximum"]
                    )
        assert swept >= 3 * 20  # every tool's numbers, nested ones included


async def refused_cleanly(
    agent: ToolAgent, tool: str, task_id: str, path: tuple[str, ...], value: int
) -> None:
    before = await agent.task_count()
    text = await agent.refusal(tool, with_value(tool, task_id, path, value))
    where = ".".join(path)
    assert text.startswith(f"{where}: must be "), (tool, where, value, text)
    assert " Example: " in text, text
    assert not any(word in text for word in INTERNALS), text
    assert await agent.task_count() == before, (tool, where, value)


async def taken_or_refused_cleanly(
    agent: ToolAgent, tool: str, task_id: str, path: tuple[str, ...], value: int
) -> None:
    result = await agent.client.call_tool(tool, with_value(tool, task_id, path, value))
    text = result.content[0].text  # type: ignore[union-attr]
    assert not any(word in text for word in INTERNALS), (tool, path, text)
    if tool in ("create_task", "patch_schedule", "get_events"):
        assert not result.is_error, (tool, path, text)
