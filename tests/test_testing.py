"""`wakecall.testing.FakeClock`: wall-clock and elapsed time that move only when told, the
sleepers they wake, and a suspend that moves the wall clock alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest

from wakecall.testing import FakeClock

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


async def test_time_passing_moves_wall_and_elapsed_time_together() -> None:
    clock = FakeClock(START)
    clock.advance(timedelta(seconds=90))
    clock.set(START + timedelta(minutes=2))
    assert clock.now() == START + timedelta(minutes=2)
    assert clock.monotonic() == 120


async def test_a_suspend_moves_the_wall_clock_alone() -> None:
    clock = FakeClock(START)
    clock.advance(2)
    clock.suspend(timedelta(hours=2))
    assert clock.now() == START + timedelta(hours=2, seconds=2)
    assert clock.monotonic() == 2
    with pytest.raises(ValueError, match="0 or more"):
        clock.suspend(-1)


async def test_sleepers_wake_on_their_own_kind_of_time() -> None:
    clock = FakeClock(START)
    woke: list[str] = []

    async def sleep_until(deadline: datetime) -> None:
        await clock.sleep_until(deadline)
        woke.append("wall")

    async def sleep(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append("elapsed")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(sleep_until, START + timedelta(minutes=1))
            tg.start_soon(sleep, 30)
            await anyio.wait_all_tasks_blocked()
            # The next wake-up as time passes: the elapsed sleeper's, 30 s from now.
            assert clock.next_deadline == START + timedelta(seconds=30)
            clock.suspend(timedelta(hours=1))  # the wall deadline passes; 0 s have elapsed
            await anyio.wait_all_tasks_blocked()
            assert woke == ["wall"]
            assert clock.next_deadline == clock.now() + timedelta(seconds=30)
            clock.advance(timedelta(seconds=30))
    assert woke == ["wall", "elapsed"]
    assert clock.next_deadline is None
