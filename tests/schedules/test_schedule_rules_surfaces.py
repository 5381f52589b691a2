"""Rules where people meet them: the preview_schedule and create_task tools through the SDK's
client, and `wakecall preview` as a real process, each describing the rule in words."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from mcp import Client

from wakecall.engine import EngineConfig
from wakecall.server import build_server, open_runtime
from wakecall.settings import Settings
from wakecall.testing import FakeClock, run_until_idle

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)  # a Monday
BIWEEKLY = "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;BYHOUR=9;BYMINUTE=0"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    settings = Settings(store=str(tmp_path / "w.db"))
    config = EngineConfig(poll_interval=timedelta(hours=1), prune_every=timedelta(days=1))
    with anyio.fail_after(20):
        async with open_runtime(settings, clock=FakeClock(NOW), config=config) as runtime:
            await run_until_idle(runtime.engine)
            async with Client(build_server(runtime)) as connected:
                yield connected


async def test_preview_schedule_describes_a_rule_and_lists_its_fires(client: Client) -> None:
    result = await client.call_tool(
        "preview_schedule", {"schedule": BIWEEKLY, "timezone": "Europe/Paris", "count": 3}
    )
    assert not result.is_error, result.content
    shown = result.structured_content
    assert shown is not None
    assert shown["description"] == (
        "every 2 weeks on Tuesday and Thursday at 09:00, from 2026-06-01 (Europe/Paris)"
    )
    assert [f["local"] for f in shown["fires"]] == [
        "2026-06-02T09:00:00+02:00",
        "2026-06-04T09:00:00+02:00",
        "2026-06-16T09:00:00+02:00",
    ]
    refused = await client.call_tool("preview_schedule", {"schedule": "RRULE:FREQ=FORTNIGHTLY"})
    assert refused.is_error
    assert "a rule needs FREQ" in refused.content[0].text  # type: ignore[union-attr]


async def test_create_task_takes_a_rule_as_calendar_tools_write_it(client: Client) -> None:
    text = (
        "DTSTART;TZID=America/New_York:20260602T090000\n"
        "RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=2"
    )
    arguments = {"name": "report", "schedule": text, "timezone": "America/New_York"}
    result = await client.call_tool("create_task", arguments)
    assert not result.is_error, result.content
    task = result.structured_content
    assert task is not None
    assert task["timezone"] == "America/New_York"
    assert "on the 2nd weekday of every month at 09:00" in json.dumps(task)
    assert task["next_fires"][0]["local"] == "2026-06-02T09:00:00-04:00"


async def test_a_rule_without_a_timezone_argument_keeps_the_zone_it_names(
    client: Client,
) -> None:
    text = "DTSTART;TZID=Europe/Paris:20260602T090000\nRRULE:FREQ=WEEKLY;BYDAY=TU"
    made = await client.call_tool("create_task", {"name": "standup", "schedule": text})
    assert not made.is_error, made.content
    assert made.structured_content is not None
    assert made.structured_content["timezone"] == "Europe/Paris"
    assert made.structured_content["next_fires"][0]["local"].endswith("T09:00:00+02:00")
    shown = await client.call_tool("preview_schedule", {"schedule": text})
    assert not shown.is_error, shown.content
    assert shown.structured_content is not None
    assert shown.structured_content["timezone"] == "Europe/Paris"
    # Other schedules still default to UTC.
    daily = await client.call_tool("create_task", {"name": "daily", "schedule": "0 9 * * *"})
    assert daily.structured_content is not None
    assert daily.structured_content["timezone"] == "UTC"


def test_wakecall_preview_describes_a_rule(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wakecall", "preview", BIWEEKLY, "--tz", "Asia/Tokyo", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["description"].startswith("every 2 weeks on Tuesday and Thursday at 09:00")
    assert shown["description"].endswith("(Asia/Tokyo)")
    days = {datetime.fromisoformat(f["local"]).strftime("%a %H:%M") for f in shown["fires"]}
    assert days == {"Tue 09:00", "Thu 09:00"}
