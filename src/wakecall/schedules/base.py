"""The ``Schedule`` protocol every schedule kind implements."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

__all__ = ["Schedule"]


@runtime_checkable
class Schedule(Protocol):
    """When a task fires. Implemented by the frozen dataclasses ``CronSchedule``,
    ``IntervalSchedule``, ``OnceSchedule``, ``DailySchedule``, ``RruleSchedule`` and
    ``OnDemandSchedule``; pure and thread-safe."""

    @property
    def kind(self) -> str:
        """ "cron", "interval", "once", "daily", "rrule" or "on_demand"."""
        ...

    @property
    def timezone(self) -> str:
        """The IANA zone the schedule is read and described in ("UTC" by default)."""
        ...

    @property
    def jitter(self) -> timedelta | None:
        """Upper bound of the deterministic delay ``jittered()`` adds to each fire."""
        ...

    @property
    def is_recurring(self) -> bool:
        """False for a ``once`` and an ``on_demand`` schedule."""
        ...

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire strictly later than ``after`` (an aware datetime in any zone), as an
        aware UTC datetime; None when there are no more fires."""
        ...

    def latest_at_or_before(self, at: datetime) -> datetime | None:
        """The most recent fire at or before ``at`` (aware UTC), found with one step back rather
        than by walking every tick; None when there is none."""
        ...

    def describe(self) -> str:
        """A short human description, such as "at 09:00 on Monday through Friday (UTC)"."""
        ...

    def to_spec(self) -> dict[str, Any]:
        """A JSON-able dict that ``schedule_from_spec()`` turns back into an equal schedule."""
        ...
