"""The next fires of a schedule, in its zone and in UTC, with a description."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from wakecall.errors import InvalidInput

from .base import Schedule
from .timeline import load_zone

__all__ = ["Preview", "PreviewFire", "preview"]

MAX_PREVIEW = 1000


@dataclass(frozen=True)
class PreviewFire:
    local: datetime  # aware, in the preview's zone
    utc: datetime


@dataclass(frozen=True)
class Preview:
    description: str
    timezone: str
    fires: list[PreviewFire]


def preview(
    schedule: Schedule, *, count: int = 5, after: datetime, timezone: str | None = None
) -> Preview:
    """The first ``count`` fires strictly after ``after`` (fewer when the schedule ends),
    shown in ``timezone`` (default: the schedule's own) and in UTC."""
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_PREVIEW:
        raise InvalidInput(
            f"count must be a whole number from 0 to {MAX_PREVIEW}, got {count!r}.",
            field="count",
            example="5",
        )
    zone_name = timezone if timezone is not None else schedule.timezone
    zone = load_zone(zone_name)
    fires: list[PreviewFire] = []
    cursor: datetime | None = after
    while cursor is not None and len(fires) < count:
        cursor = schedule.next_after(cursor)
        if cursor is not None:
            fires.append(PreviewFire(local=cursor.astimezone(zone), utc=cursor))
    return Preview(description=schedule.describe(), timezone=zone_name, fires=fires)
