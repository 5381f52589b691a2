"""The clock the engine reads time through: wall-clock time (`now()`, `sleep_until()`) and
elapsed time (`monotonic()`, `sleep()`).

Wall-clock time says when things are due and is shared with other nodes (fires, leases).
Elapsed time measures how long something has been going on this machine (an attempt's
timeout, a run's silence): it never jumps with the wall clock (an NTP step) and, on Linux,
stands still while the machine is suspended, so an attempt that ran 2 s before a laptop
slept for two hours has still run 2 s when it wakes.

The engine never calls `datetime.now()`, `time.monotonic()` or `anyio.sleep()` itself.
Production uses `SystemClock`; tests (ours and users') drive `wakecall.testing.FakeClock`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

import anyio
import anyio.lowlevel

__all__ = ["MAX_SLEEP", "Clock", "OffsetClock", "SystemClock", "utcnow"]

#: The longest single sleep of the system clock: a wall-clock jump (suspend, NTP step) is
#: noticed within this many seconds.
MAX_SLEEP = 30.0


def utcnow() -> datetime:
    return datetime.now(UTC)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, an aware UTC datetime."""
        ...

    async def sleep_until(self, deadline: datetime) -> None:
        """Return once `now() >= deadline` (or earlier if the caller is cancelled).

        May return early, never late by design: callers re-read `now()` and loop.
        """
        ...

    def monotonic(self) -> float:
        """Elapsed time in seconds from an arbitrary origin: only differences mean anything.
        Never goes back, does not move with wall-clock steps, and does not count time the
        machine spent suspended."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once `monotonic()` has moved by `seconds` (or earlier if the caller is
        cancelled). Wall-clock jumps neither shorten nor lengthen it."""
        ...


class SystemClock:
    """Wall-clock time, and elapsed time from `time.monotonic()`. Wall-clock sleeps are capped
    at `max_sleep` so that a clock jump is noticed."""

    def __init__(self, max_sleep: float = MAX_SLEEP) -> None:
        self.max_sleep = max_sleep

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, deadline: datetime) -> None:
        delay = (deadline - self.now()).total_seconds()
        if delay > 0:
            await anyio.sleep(min(delay, self.max_sleep))
        else:
            await anyio.lowlevel.checkpoint()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        # The event loop's timers run on this same clock (asyncio's `loop.time()` is
        # `time.monotonic()`), so a suspend does not count towards them either.
        await anyio.sleep(max(seconds, 0.0))


class OffsetClock(SystemClock):
    """Wall-clock time corrected by the offset of a reference clock, read at each `now()`.

    Nodes sharing a PostgreSQL database schedule by the database server's clock this way, so
    that their leases and fire times agree even when their own clocks do not. Elapsed time
    is this machine's own (`SystemClock.monotonic`)."""

    def __init__(self, offset: Callable[[], timedelta], max_sleep: float = MAX_SLEEP) -> None:
        super().__init__(max_sleep)
        self._offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset()
