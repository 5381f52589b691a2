"""Every tool through the SDK's in-memory client, with a fake clock, including each error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken

from wakecall.engine import EngineConfig
from wakecall.server import Runtime, build_server, open_runtime
from wakecall.settings import Settings
from wakecall.testing import FakeClock, run_until_idle, step_to


@dataclass
class Agent:
    client: Client
    rt: Runtime
    clock: FakeClock

    async def call(self, tool: str, **args: Any) -> dict[str, Any]:
        result = await self.client.call_tool(tool, args)
        assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
        assert result.structured_content is not None
        return result.structured_content

    async def fail(self, tool: str, **args: Any) -> str:
        result = await self.client.call_tool(tool, args)
        assert result.is_error, result.structured_content
        return result.content[0].text  # type: ignore[union-attr]

    async def step(self, delta: timedelta) -> None:
        await step_to(self.rt.engine, self.clock, self.clock.now() + delta)


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[tuple[Runtime, FakeClock]]:
    clock = FakeClock()
    settings = Settings(store=str(tmp_path / "w.db"))
    with anyio.fail_after(20):
        config = EngineConfig(poll_interval=timedelta(hours=1), prune_every=timedelta(days=1))
        async with open_runtime(settings, clock=clock, config=config) as runtime:
            await run_until_idle(runtime.engine)
            yield runtime, clock


@pytest.fixture
async def agent(rt: tuple[Runtime, FakeClock]) -> AsyncIterator[Agent]:
    runtime, clock = rt
    async with Client(build_server(runtime)) as client:
        yield Agent(client, runtime, clock)


async def test_all_tools_are_listed_with_short_descriptions_and_strict_schemas(
    agent: Agent,
) -> None:
    tools = {t.name: t for t in (await agent.client.list_tools()).tools}
    assert set(tools) == {
        "create_task",
        "get_task",
        "list_tasks",
        "patch_schedule",
        "pause",
        "resume",
        "delete",
        "run_now",
        "backfill",
        "list_runs",
        "schedule_wakeup",
        "cancel_wakeup",
        "get_events",
        "preview_schedule",
        "list_deliveries",
        "redeliver",
        "show_tasks",
    }
    for tool in tools.values():
        assert tool.description and tool.description.count(". ") <= 1, tool.name
        assert tool.input_schema["additionalProperties"] is False, tool.name
        # show_tasks answers data only to hosts with MCP Apps (see tests/server/ui).
        assert (tool.output_schema is None) == (tool.name == "show_tasks"), tool.name
    assert "UTC" in (tools["create_task"].description or "")
    assert "in" in tools["schedule_wakeup"].input_schema["properties"]


async def test_create_task_echoes_zone_and_next_fires_in_zone_and_utc(agent: Agent) -> None:
    task = await agent.call(
        "create_task", name="standup", schedule="0 9 * * MON-FRI", timezone="America/New_York"
    )
    assert task["created"] is True and task["status"] == "active"
    assert task["timezone"] == "America/New_York"
    first = task["next_fires"][0]
    assert first["local"] == "2026-01-05T09:00:00-05:00" and first["utc"] == "2026-01-05T14:00:00Z"
    assert len(task["next_fires"]) == 3
    assert "Monday through Friday" in task["schedule_description"]
    assert task["action"] == {"type": "wakeup", "reason": "standup", "context": None}


async def test_create_task_takes_every_engine_field(agent: Agent) -> None:
    task = await agent.call(
        "create_task",
        name="sync",
        schedule={"type": "interval", "every": "15m"},
        action={"type": "noop"},
        retry={"attempts": 3, "backoff": "linear", "delay": "10s"},
        timeout="30s",
        overlap="queue",
        max_queued=2,
        catchup="all",
        catchup_window="2h",
        max_runs=5,
        expires_at="2026-02-01T00:00:00Z",
        active=False,
        callback_url="https://app.example.com/hooks",
        metadata={"team": "ops"},
        idempotency_key="sync-1",
        jitter="5s",
    )
    assert task["status"] == "paused" and task["next_fires"] == []
    assert task["retry"]["attempts"] == 3 and task["retry"]["delay"] == "10s"
    assert (task["timeout"], task["overlap"], task["max_queued"]) == ("30s", "queue", 2)
    assert (task["catchup"], task["catchup_window"], task["max_runs"]) == ("all", "2h", 5)
    assert task["metadata"] == {"team": "ops"} and task["callback_url"].startswith("https://")
    assert task["schedule"]["jitter"] == "5s"
    again = await agent.call(
        "create_task", name="other", schedule="@daily", idempotency_key="sync-1"
    )
    assert again["id"] == task["id"] and again["created"] is False


async def test_schedules_in_every_form_are_accepted(agent: Agent) -> None:
    forms: list[Any] = [
        "*/15 * * * *",
        "0 */10 * * * *",
        "@hourly",
        "@every 1h30m",
        "in 5m",
        "2026-03-01T10:00:00+01:00",
        {"type": "cron", "expression": "0 9 * * 1"},
        {"type": "once", "in": "10m"},
        {"type": "once", "at": "2026-02-01T08:00:00Z"},
        {"type": "daily", "times": ["09:00", "17:30"], "weekdays": ["MON", "FRI"]},
    ]
    for form in forms:
        task = await agent.call("create_task", name="f", schedule=form)
        assert task["next_fires"], form


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"schedule": "61 * * * *"}, "minute"),
        ({"schedule": "0 0 31 2 *"}, "never"),
        ({"schedule": "0 9 * * *", "timezone": "Mars/Olympus"}, "time zone"),
        ({"schedule": "2020-01-01T00:00:00Z"}, "not in the future"),
        ({"schedule": "@every 100ms"}, "minimum"),
        ({"schedule": "x" * 5000}, "long"),
        ({"schedule": "@daily", "timeout": "-5s"}, "timeout"),
        ({"schedule": "@daily", "overlap": "sometimes"}, "overlap"),
        ({"schedule": "@daily", "callback_url": "ftp://x"}, "callback_url"),
        ({"schedule": "@daily", "action": {"type": "teleport"}}, "action"),
        ({"schedule": "@daily", "metadata": {"blob": "x" * 20000}}, "metadata"),
    ],
)
async def test_create_task_refuses_bad_input_and_stores_nothing(
    agent: Agent, args: dict[str, Any], expected: str
) -> None:
    text = await agent.fail("create_task", name="bad", **args)
    assert expected in text
    assert (await agent.call("list_tasks"))["tasks"] == []


async def test_get_task_of_an_unknown_id_says_how_to_find_ids(agent: Agent) -> None:
    text = await agent.fail("get_task", task_id="tsk_nope")
    assert "tsk_nope" in text and "list_tasks" in text


async def test_list_tasks_pages_and_filters(agent: Agent) -> None:
    ids = []
    for i in range(5):
        task = await agent.call(
            "create_task", name=f"job {i}", schedule="@daily", metadata={"even": i % 2 == 0}
        )
        ids.append(task["id"])
    await agent.call("pause", task_id=ids[0])
    page = await agent.call("list_tasks", limit=2)
    assert [t["id"] for t in page["tasks"]] == ids[:2] and page["next_cursor"] == ids[1]
    rest = await agent.call("list_tasks", cursor=page["next_cursor"])
    assert [t["id"] for t in rest["tasks"]] == ids[2:] and rest["next_cursor"] is None
    assert [t["id"] for t in (await agent.call("list_tasks", status="paused"))["tasks"]] == ids[:1]
    evens = await agent.call("list_tasks", metadata={"even": True})
    assert [t["id"] for t in evens["tasks"]] == [ids[0], ids[2], ids[4]]
    assert [t["id"] for t in (await agent.call("list_tasks", name="job 3"))["tasks"]] == [ids[3]]
    await agent.fail("list_tasks", status="sleeping")


async def test_patch_schedule_changes_any_field_and_takes_effect_at_once(agent: Agent) -> None:
    task = await agent.call("create_task", name="p", schedule="@daily", max_runs=3)
    patched = await agent.call(
        "patch_schedule",
        task_id=task["id"],
        schedule="*/5 * * * *",
        name="renamed",
        overlap="allow",
        metadata={"v": 2},
        clear=["max_runs"],
    )
    assert patched["name"] == "renamed" and patched["overlap"] == "allow"
    assert patched["max_runs"] is None and patched["metadata"] == {"v": 2}
    assert patched["next_fires"][0]["utc"] == "2026-01-05T12:05:00Z"
    await run_until_idle(agent.rt.engine)
    assert agent.clock.next_deadline is not None
    # The engine wakes a lead before the new fire to record it (`fire_lead`).
    lead = agent.rt.engine.config.fire_lead
    assert agent.clock.next_deadline + lead == datetime(2026, 1, 5, 12, 5, tzinfo=UTC)
    await agent.step(timedelta(minutes=5))
    runs = await agent.call("list_runs", task_id=task["id"])
    assert [r["status"] for r in runs["runs"]] == ["success"]


async def test_patch_schedule_errors_change_nothing(agent: Agent) -> None:
    task = await agent.call("create_task", name="p", schedule="@daily")
    assert "minute" in await agent.fail("patch_schedule", task_id=task["id"], schedule="99 * * * *")
    assert "nothing to change" in await agent.fail("patch_schedule", task_id=task["id"])
    assert "both given and cleared" in await agent.fail(
        "patch_schedule", task_id=task["id"], max_runs=3, clear=["max_runs"]
    )
    assert "no task" in await agent.fail("patch_schedule", task_id="tsk_x", name="n")
    again = await agent.call("get_task", task_id=task["id"])
    assert again["schedule"] == task["schedule"] and again["name"] == "p"


async def test_pause_resume_and_their_errors(agent: Agent) -> None:
    task = await agent.call("create_task", name="p", schedule="@every 1m")
    paused = await agent.call("pause", task_id=task["id"], note="vendor down")
    assert paused["status"] == "paused" and paused["pause_note"] == "vendor down"
    assert paused["next_fires"] == []
    await agent.step(timedelta(minutes=10))
    assert (await agent.call("list_runs", task_id=task["id"]))["runs"] == []
    resumed = await agent.call("resume", task_id=task["id"])
    assert resumed["status"] == "active"
    assert resumed["next_fires"][0]["utc"] == "2026-01-05T12:11:00Z"
    once = await agent.call("create_task", name="o", schedule="in 1m")
    await agent.step(timedelta(minutes=2))
    assert "ended" in await agent.fail("pause", task_id=once["id"])
    assert "ended" in await agent.fail("resume", task_id=once["id"])
    assert "no task" in await agent.fail("pause", task_id="tsk_x")


async def test_delete_removes_the_task(agent: Agent) -> None:
    task = await agent.call("create_task", name="d", schedule="@daily")
    assert (await agent.call("delete", task_id=task["id"]))["deleted"] is True
    assert "no task" in await agent.fail("get_task", task_id=task["id"])
    assert "no task" in await agent.fail("delete", task_id=task["id"])


async def test_run_now_and_list_runs(agent: Agent) -> None:
    task = await agent.call("create_task", name="r", schedule="@daily", action={"type": "noop"})
    run = await agent.call("run_now", task_id=task["id"])
    assert run["trigger"] == "manual" and run["status"] == "queued"
    await run_until_idle(agent.rt.engine)
    runs = await agent.call("list_runs", task_id=task["id"])
    assert [(r["id"], r["status"]) for r in runs["runs"]] == [(run["id"], "success")]
    assert (await agent.call("list_runs", status="failure"))["runs"] == []
    assert "no task" in await agent.fail("run_now", task_id="tsk_x")
    assert "no task" in await agent.fail("list_runs", task_id="tsk_x")


async def test_list_runs_pages_newest_first(agent: Agent) -> None:
    task = await agent.call("create_task", name="r", schedule="@daily", overlap="allow")
    ids = [(await agent.call("run_now", task_id=task["id"]))["id"] for _ in range(3)]
    first = await agent.call("list_runs", task_id=task["id"], limit=2)
    assert [r["id"] for r in first["runs"]] == ids[::-1][:2]
    rest = await agent.call("list_runs", task_id=task["id"], cursor=first["next_cursor"])
    assert [r["id"] for r in rest["runs"]] == [ids[0]]


async def test_schedule_wakeup_fires_with_its_context_and_reports_clamping(agent: Agent) -> None:
    wake = await agent.call(
        "schedule_wakeup", **{"in": "15m"}, reason="check CI", context={"pr": 42}
    )
    assert wake["scheduled_for"] == "2026-01-05T12:15:00Z" and wake["clamped"] is False
    clamped = await agent.call("schedule_wakeup", **{"in": "1s"})
    assert clamped["clamped"] is True and clamped["scheduled_for"] == "2026-01-05T12:00:10Z"
    await agent.call("cancel_wakeup", wakeup_id=clamped["wakeup_id"])
    await agent.step(timedelta(minutes=15))
    page = await agent.call("get_events")
    (event,) = page["events"]
    assert event["type"] == "wakeup.fired"
    assert event["payload"]["wakeup"] == {"reason": "check CI", "context": {"pr": 42}}


async def test_schedule_wakeup_errors(agent: Agent) -> None:
    assert "exactly one" in await agent.fail("schedule_wakeup", reason="x")
    assert "exactly one" in await agent.fail(
        "schedule_wakeup", **{"in": "5m"}, at="2026-01-06T00:00:00Z"
    )
    assert "in" in await agent.fail("schedule_wakeup", **{"in": "soon"})
    task = await agent.call("create_task", name="t", schedule="@daily")
    assert "not a wakeup" in await agent.fail("cancel_wakeup", wakeup_id=task["id"])
    assert "no task" in await agent.fail("cancel_wakeup", wakeup_id="tsk_x")


async def test_a_dedupe_key_returns_the_first_wakeup(agent: Agent) -> None:
    a = await agent.call("schedule_wakeup", **{"in": "5m"}, dedupe_key="poll")
    b = await agent.call("schedule_wakeup", **{"in": "9m"}, dedupe_key="poll")
    assert a["wakeup_id"] == b["wakeup_id"] and b["created"] is False


async def test_get_events_reads_after_a_cursor_and_hints_when_unread(agent: Agent) -> None:
    await agent.call("create_task", name="e", schedule="@every 1m", action={"type": "noop"})
    await agent.step(timedelta(minutes=3))
    listed = await agent.call("list_tasks")
    assert listed["hint"] and "get_events(after=0)" in listed["hint"]
    page = await agent.call("get_events", limit=2)
    assert [e["type"] for e in page["events"]] == ["task.run.completed"] * 2
    assert page["more"] is True
    rest = await agent.call("get_events")  # continues after the last cursor read
    assert len(rest["events"]) == 1 and rest["more"] is False
    assert (await agent.call("list_tasks"))["hint"] is None
    again = await agent.call("get_events", after=0)
    assert len(again["events"]) == 3


async def test_get_events_with_wait_returns_when_an_event_arrives(agent: Agent) -> None:
    await agent.call("create_task", name="w", schedule="in 1m", action={"type": "noop"})
    cursor = (await agent.call("get_events"))["cursor"]
    results: list[dict[str, Any]] = []

    async def waiter() -> None:
        results.append(await agent.call("get_events", after=cursor, wait=30))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(0.05)
            assert results == []  # still waiting: nothing has happened yet
            await agent.step(timedelta(minutes=1))
    (page,) = results
    assert [e["type"] for e in page["events"]] == ["task.run.completed"]


async def test_get_events_wait_ends_empty_at_its_deadline(agent: Agent) -> None:
    with anyio.fail_after(5):
        page = await agent.call("get_events", wait=0.05)
    assert page["events"] == [] and page["cursor"] == 0


async def test_preview_schedule_creates_nothing(agent: Agent) -> None:
    shown = await agent.call(
        "preview_schedule", schedule="0 9 * * MON-FRI", timezone="Europe/Paris", count=4
    )
    assert len(shown["fires"]) == 4 and shown["timezone"] == "Europe/Paris"
    assert shown["fires"][0]["local"] == "2026-01-06T09:00:00+01:00"
    assert "Monday" in shown["description"]
    assert (await agent.call("list_tasks"))["tasks"] == []
    assert "range" in await agent.fail("preview_schedule", schedule="0 25 * * *")


async def test_resources_show_tasks_and_runs(agent: Agent) -> None:
    import json

    task = await agent.call("create_task", name="res", schedule="@daily", action={"type": "noop"})
    run = await agent.call("run_now", task_id=task["id"])
    await run_until_idle(agent.rt.engine)
    listed = json.loads((await agent.client.read_resource("wakecall://tasks")).contents[0].text)  # type: ignore[union-attr]
    assert [t["id"] for t in listed["tasks"]] == [task["id"]]
    one = json.loads(
        (await agent.client.read_resource(f"wakecall://tasks/{task['id']}")).contents[0].text  # type: ignore[union-attr]
    )
    assert one["next_fires"] and one["timezone"] == "UTC"
    runs = json.loads(
        (await agent.client.read_resource(f"wakecall://tasks/{task['id']}/runs")).contents[0].text  # type: ignore[union-attr]
    )
    assert [r["id"] for r in runs] == [run["id"]]
    detail = json.loads(
        (await agent.client.read_resource(f"wakecall://runs/{run['id']}")).contents[0].text  # type: ignore[union-attr]
    )
    assert detail["status"] == "success" and detail["attempts"][0]["status"] == "success"
    from mcp import MCPError

    with pytest.raises(MCPError):
        await agent.client.read_resource("wakecall://tasks/tsk_missing")


async def test_an_owner_never_sees_another_owners_tasks(rt: tuple[Runtime, FakeClock]) -> None:
    runtime, clock = rt
    server = build_server(runtime)

    async def as_owner(owner: str) -> Agent:
        return Agent(Client(server), runtime, clock)

    token = auth_context_var.set(
        AuthenticatedUser(AccessToken(token="a", client_id="alice", scopes=[]))
    )
    try:
        async with Client(server) as client:
            alice = Agent(client, runtime, clock)
            task = await alice.call("create_task", name="secret", schedule="@daily")
    finally:
        auth_context_var.reset(token)
    token = auth_context_var.set(
        AuthenticatedUser(AccessToken(token="b", client_id="bob", scopes=[]))
    )
    try:
        async with Client(server) as client:
            bob = Agent(client, runtime, clock)
            assert (await bob.call("list_tasks"))["tasks"] == []
            for tool in ("get_task", "pause", "resume", "delete", "run_now"):
                assert "no task" in await bob.fail(tool, task_id=task["id"])
            assert "no task" in await bob.fail("patch_schedule", task_id=task["id"], name="x")
            assert "no task" in await bob.fail("list_runs", task_id=task["id"])
            assert (await bob.call("get_events", after=0))["events"] == []
    finally:
        auth_context_var.reset(token)
    kept = await runtime.engine.store.get_task("alice", task["id"])
    assert kept.name == "secret" and kept.status == "active"
