"""`schedule_wakeup` turned a past `at`, or `in: true`, into "in 10 s".

A past instant was moved to the earliest allowed time and `true` read as one second, then
moved; only a `clamped` flag said so. Now an `at` that is not in the future and any `in` that
is not a duration are refused, and when a time is moved to the operator's bounds the answer
says so in words (`note`).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from support.agent import tool_agent


async def test_a_past_instant_and_values_that_are_not_durations_are_refused(
    tmp_path: Path,
) -> None:
    async with tool_agent(tmp_path) as agent:
        past = (agent.clock.now() - timedelta(minutes=5)).isoformat()
        text = await agent.refusal("schedule_wakeup", {"at": past, "reason": "late"})
        assert text.startswith("at: ") and "is not in the future" in text
        for value in (True, False, {"minutes": 5}, ["5m"], -5):
            text = await agent.refusal("schedule_wakeup", {"in": value})
            assert text.startswith("in: must be a duration such as"), text
        assert "could not read 'soon' as a duration" in await agent.refusal(
            "schedule_wakeup", {"in": "soon"}
        )
        assert await agent.task_count() == 0


async def test_a_time_moved_to_the_bounds_is_said_in_the_answer(tmp_path: Path) -> None:
    async with tool_agent(tmp_path) as agent:
        soon = await agent.call("schedule_wakeup", {"in": "2s"})
        assert soon["clamped"] is True
        assert soon["note"].startswith("moved to ") and "the earliest time" in soon["note"]
        later = await agent.call("schedule_wakeup", {"in": "400d"})
        assert later["clamped"] is True and "the latest time" in later["note"]
        fine = await agent.call("schedule_wakeup", {"in": "15m"})
        assert fine["clamped"] is False and fine["note"] is None
        text = (await agent.client.call_tool("schedule_wakeup", {"in": "1s"})).content[0]
        assert "the earliest time this server allows" in text.text  # type: ignore[union-attr]
