"""The operators' page at /ui in headless Chromium: what an owner sees and does, live, by
keyboard, in a wide and a narrow window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from support.ui import (
    FITS_JS,
    LOW_CONTRAST_JS,
    TOKENS,
    Served,
    browser,
    call,
    new_page,
    screenshot_path,
    seed,
    serve_wakecall,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

#: Bounds a whole test: the server, the browser, every step.
TEST_TIMEOUT = 60
ALICES = [
    "nightly report",
    "sync invoices",
    "standup reminder",
    "weekly digest",
    "wakeup: check the deploy",
]


async def open_ui(page: Any, served: Served, owner: str) -> None:
    token = next(t for t, o in TOKENS.items() if o == owner)
    await page.goto(f"{served.url}/ui#token={token}")
    await page.locator("#task-rows tr").first.wait_for()


def row(page: Any, name: str) -> Any:
    name_button = page.get_by_role("button", name=f"{name}: show its runs")
    return page.locator("#task-rows tr", has=name_button)


async def names_shown(page: Any) -> list[str]:
    return await page.locator("#task-rows .task-name").all_inner_texts()


async def test_an_owner_sees_their_tasks_and_a_pause_click_pauses_the_task_in_the_store(
    tmp_path: Path,
) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        async with serve_wakecall(tmp_path) as served, browser() as chromium:
            seeded = await seed(served)
            page = await new_page(chromium)
            await open_ui(page, served, "alice")
            assert await names_shown(page) == ALICES
            # The token left the address bar once read.
            assert "token" not in page.url
            nightly = row(page, "nightly report")
            await nightly.get_by_role("button", name="Pause nightly report").click()
            await nightly.get_by_role("button", name="Resume nightly report").wait_for()
            task = await served.rt.tasks.get("alice", seeded.tasks["nightly report"])
            assert str(task.status) == "paused"
            assert await nightly.locator(".badge").first.inner_text() == "paused"
            await page.screenshot(path=str(screenshot_path(tmp_path, "ui-desktop")), full_page=True)
            await nightly.get_by_role("button", name="Resume nightly report").click()
            await nightly.get_by_role("button", name="Pause nightly report").wait_for()
            task = await served.rt.tasks.get("alice", seeded.tasks["nightly report"])
            assert str(task.status) == "active"


async def test_a_run_that_finishes_appears_without_a_reload(tmp_path: Path) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        async with serve_wakecall(tmp_path) as served, browser() as chromium:
            seeded = await seed(served)
            page = await new_page(chromium)
            await open_ui(page, served, "alice")
            await page.get_by_role("button", name="weekly digest: show its runs").click()
            await page.get_by_role("heading", name="Runs of weekly digest").wait_for()
            assert await page.locator("#run-list li").count() == 1
            await page.locator("#live.on").wait_for()
            await page.evaluate("() => { window.stayed = true; }")
            async with served.client("alice") as agent:
                run = await call(agent, "run_now", task_id=seeded.tasks["weekly digest"])
            await served.settle()
            await page.locator(f'#run-list li[data-run-id="{run["id"]}"]').wait_for()
            assert await page.locator("#run-list li").count() == 2
            first = page.locator("#run-list li").first
            assert await first.locator(".badge").inner_text() == "success"
            assert await page.evaluate("() => window.stayed") is True  # the same page


async def test_another_owners_token_sees_nothing_of_it(tmp_path: Path) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        async with serve_wakecall(tmp_path) as served, browser() as chromium:
            seeded = await seed(served)
            alice_page = await new_page(chromium)
            bob_page = await new_page(chromium)
            await open_ui(alice_page, served, "alice")
            await open_ui(bob_page, served, "bob")
            assert await names_shown(bob_page) == ["bob's backup"]
            await bob_page.locator("#live.on").wait_for()
            await alice_page.locator("#live.on").wait_for()
            bob_cursor = await bob_page.evaluate("() => document.body.dataset.cursor")
            async with served.client("alice") as agent:
                run = await call(agent, "run_now", task_id=seeded.tasks["sync invoices"])
            await served.settle()
            # Alice's page hears of her run; Bob's hears nothing, shows nothing of hers.
            await alice_page.locator(f'#run-list li[data-run-id="{run["id"]}"]').wait_for()
            await bob_page.get_by_role("button", name="Refresh").click()
            await bob_page.get_by_text("bob's backup", exact=True).wait_for()
            text = await bob_page.locator("body").inner_text()
            for name in ALICES:
                assert name not in text
            html = await bob_page.content()
            for task_id in seeded.tasks.values():
                assert task_id not in html
            assert run["id"] not in html
            assert await bob_page.evaluate("() => document.body.dataset.cursor") == bob_cursor


async def test_without_a_token_the_page_asks_for_one_and_refuses_a_wrong_one(
    tmp_path: Path,
) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        async with serve_wakecall(tmp_path) as served, browser() as chromium:
            await seed(served)
            page = await new_page(chromium)
            await page.goto(f"{served.url}/ui")
            token = page.get_by_label("Bearer token")
            await token.wait_for()
            assert await page.locator("#main").is_hidden()
            await token.fill("not-a-token")
            await token.press("Enter")
            await page.get_by_text("That token was refused.").wait_for()
            await token.fill("tok-bob")
            await page.get_by_role("button", name="Open").click()
            await page.locator("#task-rows tr").first.wait_for()
            assert await names_shown(page) == ["bob's backup"]
            await page.get_by_role("button", name="Sign out").click()
            await token.wait_for()
            assert await page.evaluate("() => sessionStorage.length") == 0


async def test_the_page_works_from_the_keyboard(tmp_path: Path) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        async with serve_wakecall(tmp_path) as served, browser() as chromium:
            seeded = await seed(served)
            page = await new_page(chromium)
            await open_ui(page, served, "alice")
            focused = "() => document.activeElement.getAttribute('aria-label')"
            await page.keyboard.press("Tab")  # the skip link
            assert await page.evaluate("() => document.activeElement.textContent") == (
                "Skip to the tasks"
            )
            await page.keyboard.press("Enter")
            await page.keyboard.press("Tab")
            assert await page.evaluate(focused) == "nightly report: show its runs"
            outline = await page.evaluate(
                "() => getComputedStyle(document.activeElement).outlineStyle"
            )
            assert outline != "none"  # the focus is visible
            await page.keyboard.press("ArrowDown")
            await page.keyboard.press("ArrowDown")
            assert await page.evaluate(focused) == "standup reminder: show its runs"
            await page.keyboard.press("Enter")
            await page.get_by_role("heading", name="Runs of standup reminder").wait_for()
            assert await page.evaluate(focused) == "standup reminder: show its runs"
            await page.keyboard.press("End")
            assert await page.evaluate(focused) == "wakeup: check the deploy: show its runs"
            await page.keyboard.press("ArrowUp")
            await page.keyboard.press("ArrowUp")
            # The next stops in the standup's row: its next fire is none (paused), then Resume.
            await page.keyboard.press("Tab")
            assert await page.evaluate(focused) == "Resume standup reminder"
            await page.keyboard.press("Enter")
            await (
                row(page, "standup reminder")
                .get_by_role("button", name="Pause standup reminder")
                .wait_for()
            )
            task = await served.rt.tasks.get("alice", seeded.tasks["standup reminder"])
            assert str(task.status) == "active"
            # The focus stays on the button that was pressed (now Pause).
            assert await page.evaluate(focused) == "Pause standup reminder"
            # The next fire: the viewer's time, with the task's zone on focus.
            await page.keyboard.press("Shift+Tab")
            time = page.locator(":focus")
            assert await time.evaluate("(n) => n.tagName") == "TIME"
            task_time = await time.evaluate("(n) => getComputedStyle(n, '::after').content")
            assert "America/New_York" in task_time


async def test_times_show_in_the_viewers_zone_with_the_tasks_zone_on_hover(
    tmp_path: Path,
) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        async with serve_wakecall(tmp_path) as served, browser() as chromium:
            await seed(served)
            page = await new_page(chromium)  # the viewer is in New York
            await open_ui(page, served, "alice")
            fire = row(page, "nightly report").locator("time").first
            # 02:00 in Paris on Tuesday 3 March is 20:00 on Monday in New York.
            assert await fire.inner_text() == "Mon, Mar 2, 20:00"
            assert await fire.get_attribute("datetime") == "2026-03-03T01:00:00Z"
            await fire.hover()
            shown = await fire.evaluate("(n) => getComputedStyle(n, '::after').content")
            assert "Tue, Mar 3, 02:00" in shown and "Europe/Paris" in shown
            sub = await row(page, "nightly report").locator("td").nth(3).inner_text()
            assert "Tue, Mar 3, 02:00 Paris time" in sub


@pytest.mark.parametrize(("width", "height", "scheme"), [(1280, 800, "light"), (390, 844, "dark")])
async def test_the_page_is_readable_wide_and_narrow(
    tmp_path: Path, width: int, height: int, scheme: str
) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        async with serve_wakecall(tmp_path) as served, browser() as chromium:
            seeded = await seed(served)
            page = await new_page(chromium, width=width, height=height)
            await page.emulate_media(color_scheme=scheme)
            await open_ui(page, served, "alice")
            assert await page.evaluate(FITS_JS), "the page scrolls sideways"
            assert await page.evaluate(LOW_CONTRAST_JS) == []
            nightly = row(page, "nightly report")
            pause = nightly.get_by_role("button", name="Pause nightly report")
            box = await pause.bounding_box()
            assert box is not None and box["x"] + box["width"] <= width
            assert box["height"] >= 24  # big enough to hit
            if width < 700:
                await page.screenshot(
                    path=str(screenshot_path(tmp_path, "ui-narrow")), full_page=True
                )
            await pause.click()
            await nightly.get_by_role("button", name="Resume nightly report").wait_for()
            task = await served.rt.tasks.get("alice", seeded.tasks["nightly report"])
            assert str(task.status) == "paused"
            assert await page.evaluate(LOW_CONTRAST_JS) == []
