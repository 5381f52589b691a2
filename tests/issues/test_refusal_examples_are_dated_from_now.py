"""Examples in refusals carried a fixed date that is now in the past.

Several refusals showed `2026-12-01T09:00:00+01:00`; a model that followed the example was
refused again. Every example is now computed from the current time: here the clock stands in
2031, and each example a refusal gives is followed and taken.
"""

from __future__ import annotations

import ast
import json
import re
from datetime import UTC, datetime
from pathlib import Path

from support.agent import tool_agent
from wakecall.testing import FakeClock

LATER = datetime(2031, 3, 14, 15, 9, 26, tzinfo=UTC)


def first_example(text: str) -> object:
    """The first value after "Example: " (a JSON value, before any " or ")."""
    shown = text.split(" Example: ", 1)[1].split(" or ")[0]
    value, _ = json.JSONDecoder().raw_decode(shown)
    return value


async def test_following_an_example_works_years_later(tmp_path: Path) -> None:
    async with tool_agent(tmp_path, FakeClock(LATER)) as agent:
        text = await agent.refusal("schedule_wakeup", {"at": "2030-01-01T09:00:00Z"})
        await agent.call("schedule_wakeup", {"at": first_example(text)})

        text = await agent.refusal(
            "create_task", {"name": "n", "schedule": "@daily", "expires_at": "2032-01-01"}
        )
        await agent.call(
            "create_task", {"name": "n", "schedule": "@daily", "expires_at": first_example(text)}
        )

        text = await agent.refusal("create_task", {"name": "o", "schedule": "2031-13-01T09:00"})
        assert "could not read" in text
        await agent.call("create_task", {"name": "o", "schedule": first_example(text)})

        text = await agent.refusal("create_task", {"name": "p", "schedule": "2030-01-01T09:00Z"})
        await agent.call("create_task", {"name": "p", "schedule": first_example(text)})


async def test_no_example_shows_a_day_before_today(tmp_path: Path) -> None:
    async with tool_agent(tmp_path, FakeClock(LATER)) as agent:
        texts = [
            await agent.refusal("schedule_wakeup", {"at": "2030-01-01T09:00:00Z"}),
            await agent.refusal("schedule_wakeup", {"at": "2031-03-14T09:00:00"}),
            await agent.refusal("schedule_wakeup", {"in": "15m", "timezone": "UTC"}),
            await agent.refusal("create_task", {"name": "n", "schedule": "2031-99-01"}),
            await agent.refusal("create_task", {"name": "n", "schedule": {"type": "once"}}),
            await agent.refusal(
                "create_task", {"name": "n", "schedule": "@daily", "expires_at": "soon"}
            ),
        ]
        for text in texts:
            for day in re.findall(r"\d{4}-\d{2}-\d{2}", text.split(" Example: ", 1)[1]):
                assert day >= LATER.date().isoformat(), text


def test_no_string_in_the_code_holds_a_fixed_date() -> None:
    """Docstrings and comments aside: a date in a string would one day be in the past."""
    source = Path(__file__).parents[2] / "src" / "wakecall"
    dated = re.compile(r"\b(19|20)\d\d-\d\d-\d\d")
    found = []
    for path in sorted(source.rglob("*.py")):
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        found += [
            f"{path.name}:{node.lineno}: {node.value[:60]}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and dated.search(node.value)
        ]
    assert found == []
