"""Backfill: the past fires (slots) of a task in a range, as its own schedule computes them,
and the checks a backfill request passes before anything is written. Pure: `now` is a
parameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from wakecall.errors import InvalidInput
from wakecall.models import BackfillOverlap
from wakecall.schedules import Schedule

__all__ = ["backfill_slots", "check_range", "overlap_of"]

_TINY = timedelta(microseconds=1)
#: How far a range too long for one backfill is counted, for the refusal.
_COUNT_UP_TO = 100_000


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _example(task_id: str, start: datetime, end: datetime) -> str:
    return f'{{"task_id": "{task_id}", "from": "{_utc(start)}", "to": "{_utc(end)}"}}'


def check_range(task_id: str, start: datetime, end: datetime, now: datetime) -> None:
    """`from` before `to`, `to` not in the future, both with a UTC offset."""
    day = now - timedelta(days=1)
    example = _example(task_id, day, now)
    for name, value in (("from", start), ("to", end)):
        if value.tzinfo is None:
            raise InvalidInput(f"'{name}' needs a UTC offset", field=name, example=example)
    if end > now:
        raise InvalidInput(
            f"{_utc(end)} is in the future (now is {_utc(now)}); backfill queues past fires "
            "only: give an instant at or before now",
            field="to",
            example=example,
        )
    if start >= end:
        raise InvalidInput(
            f"{_utc(start)} is not before 'to' {_utc(end)}; the range is [from, to)",
            field="from",
            example=example,
        )


def overlap_of(value: str) -> BackfillOverlap:
    try:
        return BackfillOverlap(value)
    except ValueError:
        raise InvalidInput(
            f"overlap {value!r} is not one of 'skip', 'queue' or 'allow'",
            field="overlap",
            example='"queue"',
        ) from None


def backfill_slots(
    task_id: str, schedule: Schedule, start: datetime, end: datetime, cap: int
) -> list[datetime]:
    """The fires of `schedule` in [start, end), oldest first (the same `next_after` that
    moves a task on, so DST and every schedule kind follow the task's own rules).
    `InvalidInput` when there are more than `cap`, saying how many and where to split."""
    slots: list[datetime] = []
    at = schedule.next_after(start - _TINY)
    while at is not None and at < end:
        if len(slots) == cap:
            raise _too_many(task_id, schedule, slots, at, end, cap)
        slots.append(at)
        at = schedule.next_after(at)
    return slots


def _too_many(
    task_id: str,
    schedule: Schedule,
    slots: list[datetime],
    split: datetime,
    end: datetime,
    cap: int,
) -> InvalidInput:
    count: int = len(slots)
    at: datetime | None = split
    while at is not None and at < end and count < _COUNT_UP_TO:
        count += 1
        at = schedule.next_after(at)
    more = at is not None and at < end
    held = f"more than {count:,}" if more else f"{count:,}"
    start = slots[0]
    return InvalidInput(
        f"the range holds {held} fires of task {task_id}, more than the {cap:,} one backfill "
        f"may queue; split it: from {_utc(start)} to {_utc(split)} ({cap:,} fires), then "
        f"from {_utc(split)} on",
        field="to",
        example=_example(task_id, start, split),
    )
