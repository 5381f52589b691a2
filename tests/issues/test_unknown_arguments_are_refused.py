"""Unknown arguments were dropped without a word.

`timezone` on `schedule_wakeup`, `callback_url` on `preview_schedule` and `task_id` on either
were accepted and ignored, so a model believed its time zone had been applied. Every tool now
refuses an argument it does not take, naming the closest valid one (or what to do instead) and
listing those it takes; nothing is stored.
"""

from __future__ import annotations

from pathlib import Path

from support.agent import tool_agent
from wakecall.server.tools import TOOLS
from wakecall.server.tools.published import INPUT_SCHEMAS


async def test_the_arguments_models_tried_are_refused_and_nothing_is_stored(
    tmp_path: Path,
) -> None:
    async with tool_agent(tmp_path) as agent:
        text = await agent.refusal("schedule_wakeup", {"in": "15m", "timezone": "Europe/Paris"})
        assert text.startswith("timezone: schedule_wakeup has no argument 'timezone'")
        assert "give 'at' with the UTC offset you mean" in text
        assert "It takes: in, at, reason, context, dedupe_key" in text

        text = await agent.refusal("schedule_wakeup", {"in": "15m", "task_id": "tsk_1"})
        assert text.startswith("task_id: schedule_wakeup has no argument 'task_id'")

        text = await agent.refusal(
            "preview_schedule", {"schedule": "0 9 * * *", "callback_url": "https://a.example"}
        )
        assert text.startswith("callback_url: preview_schedule has no argument 'callback_url'")
        assert "It takes: schedule, timezone, count, jitter" in text

        text = await agent.refusal("preview_schedule", {"schedule": "0 9 * * *", "task_id": "x"})
        assert "get_task shows a task's next fires" in text
        assert await agent.task_count() == 0


async def test_every_tool_names_the_closest_argument(tmp_path: Path) -> None:
    async with tool_agent(tmp_path) as agent:
        for entry in TOOLS:
            valid = list(INPUT_SCHEMAS[entry.name]["properties"])
            misspelt = valid[-1] + "s"
            text = await agent.refusal(entry.name, {misspelt: "x"})
            assert f"did you mean {valid[-1]!r}?" in text, (entry.name, text)
            assert f"It takes: {', '.join(valid)}" in text
        nested = await agent.refusal(
            "create_task",
            {"name": "n", "schedule": "@daily", "retry": {"attempts": 2, "delays": "1s"}},
        )
        assert nested.startswith("retry.delays: unknown field; did you mean 'delay'?")
        tool = await agent.refusal("create_tasks", {"name": "n", "schedule": "@daily"})
        assert tool.startswith("there is no tool 'create_tasks'; did you mean 'create_task'?")
        assert await agent.task_count() == 0
