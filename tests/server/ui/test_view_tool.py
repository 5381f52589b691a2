"""`show_tasks` and its MCP App resource, through the MCP SDK's client over HTTP."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from mcp import types

from support.ui import call, seed, serve_wakecall

pytestmark = pytest.mark.slow

APP_URI = "ui://wakecall/tasks.html"


def _text(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def test_show_tasks_is_bound_to_a_self_contained_app_and_the_server_declares_apps(
    tmp_path: Path,
) -> None:
    with anyio.fail_after(30):
        async with serve_wakecall(tmp_path) as served, served.client("alice") as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert tools["show_tasks"].meta == {"ui": {"resourceUri": APP_URI}}
            (content,) = (await client.read_resource(APP_URI)).contents
            assert content.mime_type == "text/html;profile=mcp-app"
            assert content.meta == {"ui": {"prefersBorder": True}}  # no csp: nothing outside
            html = content.text  # type: ignore[union-attr]
            assert html.startswith("<!doctype html>")
            # Everything inline: no file, script, style or font fetched from anywhere.
            assert not re.search(r"""(src|href)=["'](?!data:|#)""", html), "a link in the app"
            assert "@import" not in html and "url(" not in html
            assert html.count("<script>") == 2 and "<style>" in html
            capabilities = client.server_capabilities
            assert capabilities is not None and capabilities.extensions is not None
            assert "io.modelcontextprotocol/ui" in capabilities.extensions


async def test_hosts_with_apps_get_the_view_as_data_and_every_host_the_same_text(
    tmp_path: Path,
) -> None:
    with anyio.fail_after(30):
        async with serve_wakecall(tmp_path) as served:
            seeded = await seed(served)
            async with (
                served.client("alice") as with_apps,
                served.client("alice", apps=False) as without_apps,
            ):
                rich = await with_apps.call_tool("show_tasks", {})
                plain = await without_apps.call_tool("show_tasks", {})
    assert not rich.is_error and not plain.is_error
    assert plain.structured_content is None
    assert _text(rich) == _text(plain)
    board = rich.structured_content
    assert board is not None
    assert board["owner"] == "alice"
    assert [t["name"] for t in board["tasks"]] == [
        "nightly report",
        "sync invoices",
        "standup reminder",
        "weekly digest",
        "wakeup: check the deploy",
    ]
    nightly = board["tasks"][0]
    assert nightly["schedule"] == "at 02:00 every day"
    assert nightly["timezone"] == "Europe/Paris"
    assert nightly["next_fires"][0] == {
        "local": "2026-03-03T02:00:00+01:00",
        "utc": "2026-03-03T01:00:00Z",
    }
    # The default selection is the task with the newest run: the sync's catch-up, late.
    assert board["selected"] == seeded.tasks["sync invoices"]
    catchup, failed, *_ = board["runs"]
    assert (catchup["trigger"], catchup["late_ms"]) == ("catchup", 6 * 60 * 1000)
    assert (failed["status"], failed["duration_ms"]) == ("failure", 12000)
    assert [d["task_name"] for d in board["pending"]] == ["nightly report"]
    assert [d["task_name"] for d in board["dead"]] == ["weekly digest"]
    text = _text(plain)
    assert (
        "- nightly report [" in text and "next Tue 3 Mar 02:00 CET (2026-03-03T01:00:00Z)" in text
    )
    assert "paused: team offsite this week" in text
    assert "success (catchup) in 199ms started 6m late" in text
    assert "failure in 12s: timeout talking to the ledger" in text
    assert "Dead-lettered callbacks" in text and "410 Gone" in text


async def test_a_task_id_chooses_the_runs_and_another_owners_id_is_unknown(
    tmp_path: Path,
) -> None:
    with anyio.fail_after(30):
        async with serve_wakecall(tmp_path) as served:
            seeded = await seed(served)
            async with served.client("alice") as alice:
                board = await call(alice, "show_tasks", task_id=seeded.tasks["nightly report"])
                refused = await alice.call_tool("show_tasks", {"task_id": seeded.bobs})
    (run,) = board["runs"]
    assert (run["status"], run["attempt"], run["max_attempts"]) == ("success", 2, 3)
    assert refused.is_error
    assert f"no task with id {seeded.bobs!r}" in _text(refused)


async def test_after_and_wait_answer_when_news_arrives_without_moving_the_agents_position(
    tmp_path: Path,
) -> None:
    with anyio.fail_after(30):
        async with serve_wakecall(tmp_path) as served:
            seeded = await seed(served)
            read_before = await served.rt.inbox.last_read("alice")
            async with served.client("alice") as view, served.client("alice") as agent:
                board = await call(view, "show_tasks")
                # No news: the call answers when its wait is over, with the same cursor.
                quiet = await call(view, "show_tasks", after=board["cursor"], wait=0.2)
                assert quiet["cursor"] == board["cursor"]
                answers: list[dict[str, object]] = []

                async def wait_for_news() -> None:
                    answers.append(await call(view, "show_tasks", after=board["cursor"], wait=20))

                async with anyio.create_task_group() as tg:
                    tg.start_soon(wait_for_news)
                    await anyio.lowlevel.checkpoint()
                    await call(agent, "run_now", task_id=seeded.tasks["weekly digest"])
                    await served.settle()
            (fresh,) = answers
            assert fresh["cursor"] > board["cursor"]
            assert await served.rt.inbox.last_read("alice") == read_before
