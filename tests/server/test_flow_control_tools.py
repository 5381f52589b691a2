"""Flow control through the tools, with the SDK's real client: create_task and patch_schedule
take `concurrency` and `rate_limit`, get_task shows them and says why a due run waits, and a
bad limit is refused with nothing stored."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from support.agent import tool_agent
from wakecall.testing import advance


async def test_a_rate_limited_run_waits_and_get_task_says_why(tmp_path: Path) -> None:
    async with tool_agent(tmp_path) as agent:
        rate = {"key": "crm", "limit": 1, "period": "1h"}
        made = [
            await agent.call(
                "create_task", {"name": f"sync {n}", "schedule": "in 1m", "rate_limit": rate}
            )
            for n in range(2)
        ]
        assert made[0]["rate_limit"] == rate and made[0]["waiting"] is None
        await advance(agent.rt.engine, agent.clock, timedelta(minutes=1))
        shown = [await agent.call("get_task", {"task_id": t["id"]}) for t in made]
        waits = sorted(s["waiting"] or "" for s in shown)
        assert waits[0] == ""
        assert waits[1].startswith("waiting for rate limit key crm (1 starts per 1h); next start")
        hourly = await agent.call("create_task", {"name": "hourly", "schedule": "@hourly"})
        patched = await agent.call(
            "patch_schedule",
            {"task_id": hourly["id"], "concurrency": {"key": "crm", "limit": 2}},
        )
        assert patched["concurrency"] == {"key": "crm", "limit": 2}
        cleared = await agent.call(
            "patch_schedule", {"task_id": hourly["id"], "clear": ["concurrency", "rate_limit"]}
        )
        assert cleared["concurrency"] is None and cleared["rate_limit"] is None


async def test_a_bad_limit_is_refused_and_stores_nothing(tmp_path: Path) -> None:
    async with tool_agent(tmp_path) as agent:
        text = await agent.refusal(
            "create_task",
            {"name": "x", "schedule": "@hourly", "concurrency": {"key": "crm", "limit": 0}},
        )
        assert "concurrency" in text and "limit" in text
        text = await agent.refusal(
            "create_task",
            {
                "name": "x",
                "schedule": "@hourly",
                "rate_limit": {"key": "crm", "limit": 5, "period": "3d"},
            },
        )
        assert "between 1s and 24h" in text
        assert await agent.task_count() == 0
