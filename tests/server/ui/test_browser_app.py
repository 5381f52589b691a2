"""The MCP App in headless Chromium, inside a host made of the host side of
@modelcontextprotocol/ext-apps (AppBridge): the host reads the `ui://` resource and calls
`show_tasks` through the MCP SDK's client over HTTP, renders the view in a sandboxed iframe
under the Apps specification's default policy (no network), and forwards the view's tool calls
to the server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from support.ui import (
    FITS_JS,
    LOW_CONTRAST_JS,
    Served,
    browser,
    build_host,
    call,
    new_page,
    screenshot_path,
    seed,
    serve_folder,
    serve_wakecall,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

TEST_TIMEOUT = 60
HOST_CONTEXT = {
    "theme": "light",
    "timeZone": "Europe/London",
    "locale": "en-GB",
    "displayMode": "inline",
    "availableDisplayModes": ["inline"],
    "platform": "web",
    "containerDimensions": {"maxHeight": 6000},
}


@dataclass
class Hosted:
    page: Any
    view: Any  # the iframe's content
    client: Client
    calls: list[str]
    violations: list[str]


async def _tool_result(client: Client, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(name, arguments)
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)


@asynccontextmanager
async def hosted_app(
    served: Served, tmp_path: Path, chromium: Any, owner: str, *, width: int = 1280
) -> AsyncIterator[Hosted]:
    """The app as a host shows it after the model called `show_tasks` as `owner`."""
    folder = build_host(tmp_path / "host")
    async with served.client(owner) as client, serve_folder(folder) as host_url:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        uri = tools["show_tasks"].meta["ui"]["resourceUri"]
        (resource,) = (await client.read_resource(uri)).contents
        assert resource.mime_type == "text/html;profile=mcp-app"
        first = await _tool_result(client, "show_tasks", {})
        page = await new_page(chromium, width=width, height=900)
        violations: list[str] = []
        page.on("console", lambda m: violations.append(m.text) if m.type == "error" else None)
        calls: list[str] = []

        async def host_call_tool(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
            calls.append(name)
            return await _tool_result(client, name, arguments)

        await page.expose_function("hostCallTool", host_call_tool)
        await page.goto(f"{host_url}/host.html")
        await page.wait_for_function("() => typeof window.startHost === 'function'")
        await page.evaluate(
            "(args) => window.startHost(args)",
            {
                "html": resource.text,
                "toolArgs": {},
                "toolResult": first,
                "hostContext": HOST_CONTEXT,
            },
        )
        view = page.frame_locator("iframe")
        await view.locator("#task-rows tr").first.wait_for()
        yield Hosted(page, view, client, calls, violations)


async def test_the_app_shows_the_tasks_and_acts_through_the_host(tmp_path: Path) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        async with serve_wakecall(tmp_path) as served, browser() as chromium:
            seeded = await seed(served)
            async with hosted_app(served, tmp_path, chromium, "alice") as hosted:
                view = hosted.view
                names = await view.locator("#task-rows .task-name").all_inner_texts()
                assert names[:2] == ["nightly report", "sync invoices"]
                assert len(names) == 5
                # Times in the viewer's zone as the host gives it (London), the task's on hover.
                fire = view.locator("#task-rows tr[data-task-id] time").first
                assert await fire.inner_text() == "Tue 3 Mar, 01:00"
                assert "Europe/Paris" in (await fire.get_attribute("data-task-time") or "")
                # Pause goes through the host to the server's pause tool.
                nightly = view.locator(f'tr[data-task-id="{seeded.tasks["nightly report"]}"]')
                await nightly.get_by_role("button", name="Pause nightly report").click()
                await nightly.get_by_role("button", name="Resume nightly report").wait_for()
                task = await served.rt.tasks.get("alice", seeded.tasks["nightly report"])
                assert str(task.status) == "paused"
                assert "pause" in hosted.calls
                # The host's frame grew to the view's height (size-changed notifications).
                height = await hosted.page.evaluate(
                    "() => document.querySelector('iframe').getBoundingClientRect().height"
                )
                assert height > 600
                await hosted.page.screenshot(
                    path=str(screenshot_path(tmp_path, "app-in-host")), full_page=True
                )
                await nightly.get_by_role("button", name="Resume nightly report").click()
                await nightly.get_by_role("button", name="Pause nightly report").wait_for()
                task = await served.rt.tasks.get("alice", seeded.tasks["nightly report"])
                assert str(task.status) == "active"
                # Run now, through the run_now tool; the engine runs it.
                runs_before = len(await served.rt.tasks.list_runs("alice", limit=100))
                await nightly.get_by_role("button", name="Run nightly report now").click()
                await view.get_by_text("Queued a run of nightly report").wait_for()
                assert "run_now" in hosted.calls
                assert len(await served.rt.tasks.list_runs("alice", limit=100)) == runs_before + 1
                await served.settle()
                # A run the agent starts shows in the view when it finishes, with no reload.
                await view.get_by_role("button", name="weekly digest: show its runs").click()
                await view.get_by_role("heading", name="Runs of weekly digest").wait_for()
                await view.locator("#live.on").wait_for()
                async with served.client("alice") as agent:
                    run = await call(agent, "run_now", task_id=seeded.tasks["weekly digest"])
                await served.settle()
                await view.locator(f'#run-list li[data-run-id="{run["id"]}"]').wait_for()
                # A dead-lettered callback is sent again through the redeliver tool.
                dead = view.locator("#dead li").first
                delivery_id = await dead.get_attribute("data-delivery-id")
                sent = served.receiver.hits.count("/gone")
                await dead.get_by_role("button", name="Redeliver task.run.completed").click()
                await view.get_by_text("Queued task.run.completed again").wait_for()
                assert "redeliver" in hosted.calls
                with anyio.fail_after(10):
                    await served.receiver.wait_for_hits("/gone", sent + 1)
                    await served.rt.callbacks.wait_idle()
                (again,) = [
                    d for d in await served.rt.tasks.list_deliveries("alice") if d.id == delivery_id
                ]
                # Sent again (the receiver still answers 410, so it is dead-lettered again).
                assert str(again.status) == "failed" and again.last_status == 410
                assert hosted.violations == []


async def test_the_app_of_another_owner_sees_nothing_of_it(tmp_path: Path) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        async with serve_wakecall(tmp_path) as served, browser() as chromium:
            seeded = await seed(served)
            async with hosted_app(served, tmp_path, chromium, "bob", width=420) as hosted:
                view = hosted.view
                names = await view.locator("#task-rows .task-name").all_inner_texts()
                assert names == ["bob's backup"]
                frame = hosted.page.frames[1]
                assert await frame.evaluate(FITS_JS), "the view scrolls sideways"
                assert await frame.evaluate(LOW_CONTRAST_JS) == []
                html = await frame.content()
                for task_id in seeded.tasks.values():
                    assert task_id not in html
                # Alice's ids are unknown to Bob's calls through the host too.
                result = await hosted.client.call_tool(
                    "show_tasks", {"task_id": seeded.tasks["nightly report"]}
                )
                assert result.is_error
                await hosted.page.screenshot(
                    path=str(screenshot_path(tmp_path, "app-narrow")), full_page=True
                )
                assert hosted.violations == []
