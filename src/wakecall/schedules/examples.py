"""Instants to show in examples, computed from the current time so that following an example
works: a fixed date would one day be in the past, and a model that copied it would be refused
again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["INSTANT_SHAPE", "future_instant", "instant_example"]

#: The shape of an instant, for messages that have no current time to work from.
INSTANT_SHAPE = '"YYYY-MM-DDT09:00:00+01:00"'


def future_instant(now: datetime, *, days: int = 1) -> str:
    """09:00 at UTC+01:00 on the day `days` after `now`'s day in UTC, as ISO-8601 text: always
    after `now` (by at least `days` - 1 days and 8 hours)."""
    day = (now.astimezone(UTC) + timedelta(days=days)).date()
    return f"{day.isoformat()}T09:00:00+01:00"


def instant_example(now: datetime | None) -> str:
    """An example for an instant: one in the future, with an offset and in UTC (`INSTANT_SHAPE`
    without `now`)."""
    if now is None:
        return INSTANT_SHAPE
    local = future_instant(now)
    in_utc = datetime.fromisoformat(local).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f'"{local}" or "{in_utc}"'
