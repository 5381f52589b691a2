"""The system clocks: wall-clock time, wall-clock time corrected by a reference's offset, and
elapsed time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import anyio

from wakecall.clock import OffsetClock, SystemClock


async def test_an_offset_clock_reads_and_sleeps_on_the_reference_time() -> None:
    offset = timedelta(hours=-3)
    clock = OffsetClock(lambda: offset)
    assert abs(clock.now() - (datetime.now(UTC) + offset)) < timedelta(seconds=1)
    with anyio.fail_after(5):  # sleeping to a reference instant takes reference time, not 3 h
        target = clock.now() + timedelta(milliseconds=50)
        while clock.now() < target:
            await clock.sleep_until(target)
    # The offset is read at every call: a new measurement takes effect at once.
    offset = timedelta(0)
    assert abs(clock.now() - SystemClock().now()) < timedelta(seconds=1)


async def test_elapsed_time_is_the_monotonic_clock_and_sleep_waits_for_it() -> None:
    clock = OffsetClock(lambda: timedelta(hours=5))  # the wall offset plays no part in it
    with anyio.fail_after(5):
        before = clock.monotonic()
        assert abs(before - time.monotonic()) < 1
        await clock.sleep(0.05)
        assert clock.monotonic() - before >= 0.05
        await clock.sleep(-1)  # nothing to wait for: returns at once
