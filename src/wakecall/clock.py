"""The clock the engine reads time through: `now()` and `sleep_until()`.

The engine never calls `datetime.now()` or `anyio.sleep()` itself. Production uses
`SystemClock`; tests (ours and users') drive `wakecall.testing.FakeClock`.
"""

from __future__ import annotations

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


class SystemClock:
    """Wall-clock time. Sleeps are capped at `max_sleep` so that a clock jump is noticed."""

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


class OffsetClock(SystemClock):
    """Wall-clock time corrected by the offset of a reference clock, read at each `now()`.

    Nodes sharing a PostgreSQL database schedule by the database server's clock this way, so
    that their leases and fire times agree even when their own clocks do not."""

    def __init__(self, offset: Callable[[], timedelta], max_sleep: float = MAX_SLEEP) -> None:
        super().__init__(max_sleep)
        self._offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset()
