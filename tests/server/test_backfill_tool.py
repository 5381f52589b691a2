"""The `backfill` tool through the MCP SDK's client: past fires queued once, a dry run that
lists them in the task's zone, refusals that change nothing, another owner's task unknown."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from support.agent import tool_agent
from wakecall.testing import step_to

RANGE = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-05T00:00:00Z"}  # the clock: 5 Jan 12:00


async def test_backfill_queues_each_past_fire_once_and_the_runs_run(tmp_path: Path) -> None:
    async with tool_agent(tmp_path) as agent:
        task = await agent.call(
            "create_task",
            {
                "name": "report",
                "schedule": "0 9 * * *",
                "timezone": "Europe/Paris",
                "action": {"type": "noop"},
            },
        )
        preview = await agent.call("backfill", {"task_id": task["id"], **RANGE, "dry_run": True})
        assert (preview["fires"], preview["queued"], preview["dry_run"]) == (4, 4, True)
        assert preview["slots"][0] == "2026-01-01T09:00:00+01:00"
        assert (await agent.call("list_runs", {"task_id": task["id"]}))["runs"] == []
        done = await agent.call("backfill", {"task_id": task["id"], **RANGE})
        assert (done["fires"], done["queued"], done["already_backfilled"]) == (4, 4, 0)
        assert done["overlap"] == "queue" and done["slots"] is None
        again = await agent.call("backfill", {"task_id": task["id"], **RANGE})
        assert (again["queued"], again["already_backfilled"]) == (0, 4)
        await step_to(agent.rt.engine, agent.clock, agent.clock.now() + timedelta(seconds=1))
        runs = (await agent.call("list_runs", {"task_id": task["id"]}))["runs"]
        assert [(r["trigger"], r["status"]) for r in runs] == [("backfill", "success")] * 4
        assert sorted(r["scheduled_for"] for r in runs)[0] == "2026-01-01T08:00:00Z"


async def test_backfill_refusals_change_nothing(tmp_path: Path) -> None:
    async with tool_agent(tmp_path) as agent:
        task = await agent.call("create_task", {"name": "r", "schedule": "0 9 * * *"})
        cases = [
            ({"from": "2026-01-01T00:00:00Z", "to": "2026-01-06T00:00:00Z"}, "is in the future"),
            ({"from": "2026-01-03T00:00:00Z", "to": "2026-01-02T00:00:00Z"}, "not before 'to'"),
            ({"from": "2022-01-01T00:00:00Z", "to": "2026-01-05T00:00:00Z"}, "split it"),
            ({**RANGE, "overlap": "cancel_previous"}, "overlap: must be one of"),
            ({"from": "2026-01-01T00:00:00", "to": "2026-01-02T00:00:00Z"}, "UTC offset"),
        ]
        for arguments, words in cases:
            text = await agent.refusal("backfill", {"task_id": task["id"], **arguments})
            assert words in text and " Example: " in text, text
        text = await agent.refusal("backfill", {"task_id": "tsk_nope", **RANGE})
        assert text.startswith("no task with id 'tsk_nope'")
        assert (await agent.call("list_runs", {"task_id": task["id"]}))["runs"] == []


async def test_argument_refusals_show_examples_for_backfill(tmp_path: Path) -> None:
    async with tool_agent(tmp_path) as agent:
        task = await agent.call("create_task", {"name": "r", "schedule": "0 9 * * *"})
        text = await agent.refusal("backfill", {"task_id": task["id"], **RANGE, "overlap": "x"})
        assert 'Example: "queue", "skip" or "allow"' in text, text
        text = await agent.refusal("backfill", {"task_id": task["id"], "from": "yesterday"})
        assert "to: is required" in text and "2026-01-05T12:00:00Z" in text, text
