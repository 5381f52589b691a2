"""The handoff from the dispatcher to the workers: each item to one taker, in order, none
lost to a taker cancelled after it was woken."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from wakecall.engine.handoff import Handoff

pytestmark = pytest.mark.anyio


async def test_an_item_waiting_is_taken_without_yielding_to_the_loop() -> None:
    handoff: Handoff[str] = Handoff()
    assert handoff.put("a") is False  # nobody waits: the caller starts a taker
    assert handoff.put("b") is False
    with anyio.fail_after(1):
        # Cancelled before it starts, a call that yielded would raise here.
        with anyio.CancelScope() as scope:
            scope.cancel()
            assert await handoff.take() == "a"
            assert await handoff.take() == "b"


async def test_waiting_takers_are_woken_one_per_item_in_the_order_they_came() -> None:
    handoff: Handoff[int] = Handoff()
    taken: list[tuple[str, int | None]] = []

    async def taker(name: str) -> None:
        taken.append((name, await handoff.take()))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for name in ("first", "second", "third"):
                tg.start_soon(taker, name)
                await anyio.wait_all_tasks_blocked()
            assert handoff.put(1) is True
            assert handoff.put(2) is True
            await anyio.wait_all_tasks_blocked()
            assert taken == [("first", 1), ("second", 2)]
            handoff.close()
    assert taken[-1] == ("third", None)


async def test_a_taker_cancelled_after_it_was_woken_passes_its_item_on() -> None:
    """asyncio throws a cancel into a task even when what it awaited is done (anyio's own
    cancel scopes wait for its next checkpoint): the item it was woken for is not lost."""
    handoff: Handoff[str] = Handoff()
    taken: list[str | None] = []

    async def taker() -> None:
        taken.append(await handoff.take())

    with anyio.fail_after(5):
        doomed = asyncio.get_running_loop().create_task(taker())
        await anyio.wait_all_tasks_blocked()
        async with anyio.create_task_group() as tg:
            tg.start_soon(taker)
            await anyio.wait_all_tasks_blocked()
            assert handoff.put("job") is True  # wakes the first taker...
            doomed.cancel()  # ...cancelled before it runs
            await anyio.wait_all_tasks_blocked()
            assert doomed.cancelled()
    assert taken == ["job"]  # taken by the second taker


async def test_a_taker_cancelled_while_waiting_is_not_woken_for_an_item() -> None:
    handoff: Handoff[str] = Handoff()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(handoff.take)
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
    assert handoff.put("job") is False  # no taker left: the caller starts one


async def test_nothing_is_put_once_closed() -> None:
    handoff: Handoff[str] = Handoff()
    handoff.close()
    assert await handoff.take() is None
    with pytest.raises(anyio.ClosedResourceError):
        handoff.put("late")
