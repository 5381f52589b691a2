"""Type errors and missing fields came back as raw pydantic text.

A wrong type or a missing field answered with the SDK's "Error executing tool", pydantic's
"create_taskArguments" and a documentation URL, unlike wakecall's own refusals. Every such
refusal is now "field: problem. Example: value" in wakecall's words.
"""

from __future__ import annotations

from pathlib import Path

from support.agent import tool_agent

INTERNALS = ("Arguments", "pydantic", "errors.pydantic.dev", "Error executing", "Input should")


async def test_wrong_types_and_missing_fields_are_refused_in_our_words(tmp_path: Path) -> None:
    async with tool_agent(tmp_path) as agent:
        cases = [
            ("create_task", {"schedule": "@daily"}, "name: is required. Example: "),
            ("create_task", {"name": 5, "schedule": "@daily"}, "name: must be text, got 5."),
            ("create_task", {"name": "n", "schedule": 7}, "schedule: must be text or an object"),
            (
                "create_task",
                {"name": "n", "schedule": "@daily", "active": "yes"},
                "active: must be true or false",
            ),
            (
                "create_task",
                {"name": "n", "schedule": "@daily", "overlap": "skipp"},
                "did you mean 'skip'?",
            ),
            (
                "create_task",
                {"name": "n", "schedule": "@daily", "action": {"type": "webhook"}},
                "action.url: is required.",
            ),
            (
                "create_task",
                {"name": "n", "schedule": "@daily", "expires_at": "2031-01-01T00:00:00"},
                "expires_at: must be an ISO-8601 instant with a UTC offset",
            ),
            ("list_tasks", {"limit": "5"}, 'limit: must be a whole number from 1 to 100, got "5".'),
            ("list_runs", {"status": 3}, "status: must be one of"),
            ("get_events", {"wait": "long"}, "wait: must be a number from 0 to 3600"),
            ("get_task", {}, "task_id: is required."),
            ("patch_schedule", {"task_id": "t", "clear": "timeout"}, "clear: must be a list"),
        ]
        for tool, arguments, expected in cases:
            text = await agent.refusal(tool, arguments)
            assert expected in text, (tool, arguments, text)
            assert " Example: " in text
            assert not any(word in text for word in INTERNALS), text
        assert await agent.task_count() == 0


async def test_the_tools_own_refusals_lose_the_sdk_prefix(tmp_path: Path) -> None:
    async with tool_agent(tmp_path) as agent:
        text = await agent.refusal("get_task", {"task_id": "tsk_missing"})
        assert text.startswith("no task with id 'tsk_missing'")
        text = await agent.refusal("create_task", {"name": "n", "schedule": "0 9 * * FOO"})
        assert text.startswith("schedule: ") and "Error executing" not in text
