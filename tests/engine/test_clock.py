"""The system clocks: wall-clock time, and wall-clock time corrected by a reference's offset."""

from __future__ import annotations

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
