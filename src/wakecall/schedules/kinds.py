"""The schedule kinds: cron, interval, once, daily, and on demand, as frozen dataclasses.

Constructing one validates it (expression, zone, times, jitter) but makes no check that depends
on the current time; ``parse_schedule`` adds those.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from typing import Any, ClassVar

from wakecall.errors import InvalidSchedule

from .cron import DAY_NAMES, DAY_WORDS, CronPattern, compile_cron, join_words
from .durations import DURATION_EXAMPLE, describe_duration, format_duration
from .examples import INSTANT_SHAPE
from .timeline import (
    DAY,
    Timeline,
    from_instant,
    latest_fire,
    load_zone,
    next_fire,
    timeline_for,
    to_instant,
)

__all__ = [
    "CronSchedule",
    "DailySchedule",
    "IntervalSchedule",
    "OnDemandSchedule",
    "OnceSchedule",
]

DAILY_EXAMPLE = '{"type": "daily", "times": ["09:00", "17:30"], "weekdays": ["MON", "FRI"]}'


def _check_common(schedule: Any) -> Timeline | None:
    timeline = timeline_for(schedule.timezone)
    jitter = schedule.jitter
    if jitter is not None:
        if not isinstance(jitter, timedelta):
            raise InvalidSchedule(
                f"jitter must be a duration, got {type(jitter).__name__}.",
                field="jitter",
                example=DURATION_EXAMPLE,
            )
        if jitter < timedelta(0):
            raise InvalidSchedule(
                f"jitter must not be negative, got {format_duration(jitter)}.",
                field="jitter",
                example='"30s" or "5m"',
            )
        if not jitter:
            object.__setattr__(schedule, "jitter", None)
    return timeline


def _common_spec(schedule: Any, spec: dict[str, Any]) -> dict[str, Any]:
    spec["timezone"] = schedule.timezone
    if schedule.jitter is not None:
        spec["jitter"] = format_duration(schedule.jitter)
    return spec


def _aware_utc(value: object, name: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidSchedule(
            f"{name} must be an aware datetime, got {value!r}.",
            field="schedule",
            example=INSTANT_SHAPE,
        )
    return value.astimezone(UTC)


def _local_text(moment: datetime, zone: str) -> str:
    local = moment.astimezone(load_zone(zone))
    text = local.strftime("%Y-%m-%d %H:%M")
    if local.second or local.microsecond:
        text += local.strftime(":%S")
    return text


@dataclass(frozen=True)
class CronSchedule:
    """A cron expression read in ``timezone``. Fixed-time expressions (hour, minute and, with
    6 fields, second not starting with ``*``) keep their local time across DST changes; the
    others follow real time (see ``timeline.py``)."""

    expression: str
    timezone: str = "UTC"
    jitter: timedelta | None = None
    kind: ClassVar[str] = "cron"
    _pattern: CronPattern = field(init=False, repr=False, compare=False)
    _timeline: Timeline | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.expression, str):
            raise InvalidSchedule(
                "cron expression must be text.", field="schedule", example='"0 9 * * MON-FRI"'
            )
        pattern = compile_cron(self.expression)
        object.__setattr__(self, "expression", pattern.expression)
        object.__setattr__(self, "_pattern", pattern)
        object.__setattr__(self, "_timeline", _check_common(self))

    @property
    def is_recurring(self) -> bool:
        return True

    @property
    def fixed_time(self) -> bool:
        """True when fires keep their local time across DST changes."""
        return self._pattern.fixed

    def next_after(self, after: datetime) -> datetime | None:
        fire = next_fire(self._pattern, self._timeline, self._pattern.fixed, to_instant(after))
        return None if fire is None else from_instant(fire)

    def latest_at_or_before(self, at: datetime) -> datetime | None:
        fire = latest_fire(self._pattern, self._timeline, self._pattern.fixed, to_instant(at))
        return None if fire is None else from_instant(fire)

    def describe(self) -> str:
        return f"{self._pattern.describe()} ({self.timezone})"

    def to_spec(self) -> dict[str, Any]:
        return _common_spec(self, {"type": "cron", "expression": self.expression})

    def shortest_gap(self) -> timedelta:
        """A lower bound on the time between two fires, ignoring DST shifts."""
        return timedelta(seconds=self._pattern.shortest_gap())


@dataclass(frozen=True)
class IntervalSchedule:
    """Fires at ``start + k * every`` for k = 0, 1, 2, ...: pure UTC arithmetic, anchored to the
    start rather than to the last run. ``timezone`` only affects how fires are shown."""

    every: timedelta
    start: datetime
    timezone: str = "UTC"
    jitter: timedelta | None = None
    kind: ClassVar[str] = "interval"

    def __post_init__(self) -> None:
        if not isinstance(self.every, timedelta) or self.every <= timedelta(0):
            given = (
                format_duration(self.every)
                if isinstance(self.every, timedelta)
                else type(self.every).__name__
            )
            raise InvalidSchedule(
                f"an interval must be longer than zero, got {given}: give the time between "
                "two fires as a number and a unit (s, m, h, d).",
                field="schedule",
                example='"@every 30s", "@every 15m" or "@every 1h30m"',
            )
        object.__setattr__(self, "start", _aware_utc(self.start, "interval start"))
        _check_common(self)

    @property
    def is_recurring(self) -> bool:
        return True

    def next_after(self, after: datetime) -> datetime | None:
        if after < self.start:
            return self.start
        try:
            return self.start + ((after - self.start) // self.every + 1) * self.every
        except OverflowError:  # past year 9999
            return None

    def latest_at_or_before(self, at: datetime) -> datetime | None:
        if at < self.start:
            return None
        return self.start + ((at - self.start) // self.every) * self.every

    def describe(self) -> str:
        return f"every {describe_duration(self.every)}"

    def to_spec(self) -> dict[str, Any]:
        spec = {
            "type": "interval",
            "every": format_duration(self.every),
            "start": self.start.isoformat(),
        }
        return _common_spec(self, spec)


@dataclass(frozen=True)
class OnceSchedule:
    """Fires once, at ``at``."""

    at: datetime
    timezone: str = "UTC"
    jitter: timedelta | None = None
    kind: ClassVar[str] = "once"

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", _aware_utc(self.at, "once at"))
        _check_common(self)

    @property
    def is_recurring(self) -> bool:
        return False

    def next_after(self, after: datetime) -> datetime | None:
        return self.at if self.at > after else None

    def latest_at_or_before(self, at: datetime) -> datetime | None:
        return self.at if self.at <= at else None

    def describe(self) -> str:
        return f"once at {_local_text(self.at, self.timezone)} {self.timezone}"

    def to_spec(self) -> dict[str, Any]:
        return _common_spec(self, {"type": "once", "at": self.at.isoformat()})


@dataclass(frozen=True)
class OnDemandSchedule:
    """Never fires by the clock: the task runs on `run_now`, on an inbound event, or after
    each success of the task it depends on."""

    timezone: str = "UTC"
    jitter: timedelta | None = None
    kind: ClassVar[str] = "on_demand"

    def __post_init__(self) -> None:
        _check_common(self)

    @property
    def is_recurring(self) -> bool:
        return False

    def next_after(self, after: datetime) -> datetime | None:
        return None

    def latest_at_or_before(self, at: datetime) -> datetime | None:
        return None

    def describe(self) -> str:
        return "on demand (run_now, an inbound event, or the task it depends on)"

    def to_spec(self) -> dict[str, Any]:
        return _common_spec(self, {"type": "on_demand"})


class DailyPattern:
    """Local times of day, on every day or on some weekdays (0 = Sunday ... 6 = Saturday)."""

    fixed = True

    def __init__(self, seconds_of_day: tuple[int, ...], weekdays: frozenset[int] | None):
        self.times = seconds_of_day
        self.weekdays = weekdays

    def next_match(self, wall: int, limit: int) -> int | None:
        days, second_of_day = divmod(wall, DAY)
        times, weekdays = self.times, self.weekdays
        for _ in range(8):
            # 1970-01-01 was a Thursday (4)
            if weekdays is None or (days + 4) % 7 in weekdays:
                index = bisect_left(times, second_of_day)
                if index < len(times):
                    found = days * DAY + times[index]
                    return found if found < limit else None
            days, second_of_day = days + 1, 0
        return None

    def prev_match(self, wall: int, limit: int) -> int | None:
        days, second_of_day = divmod(wall, DAY)
        times, weekdays = self.times, self.weekdays
        for _ in range(8):
            if weekdays is None or (days + 4) % 7 in weekdays:
                index = bisect_right(times, second_of_day) - 1
                if index >= 0:
                    found = days * DAY + times[index]
                    return found if found >= limit else None
            days, second_of_day = days - 1, DAY - 1
        return None


def _time_text(value: time) -> str:
    text = f"{value.hour:02d}:{value.minute:02d}"
    return text + f":{value.second:02d}" if value.second else text


@dataclass(frozen=True)
class DailySchedule:
    """Fires at each of ``times`` (local, in ``timezone``) on every day, or only on
    ``weekdays`` (0 = Sunday ... 6 = Saturday). Every time is a fixed local time: once when
    clocks go back, at the end of the gap when they jump forward."""

    times: tuple[time, ...]
    weekdays: tuple[int, ...] | None = None
    timezone: str = "UTC"
    jitter: timedelta | None = None
    kind: ClassVar[str] = "daily"
    _pattern: DailyPattern = field(init=False, repr=False, compare=False)
    _timeline: Timeline | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        times = self.times
        if not isinstance(times, tuple | list) or not times:
            raise InvalidSchedule(
                "a daily schedule needs at least one time.",
                field="schedule",
                example=DAILY_EXAMPLE,
            )
        for value in times:
            if not isinstance(value, time) or value.tzinfo is not None or value.microsecond:
                raise InvalidSchedule(
                    f"daily time {value!r} must be a local time of day in whole seconds.",
                    field="schedule",
                    example=DAILY_EXAMPLE,
                )
        ordered = tuple(sorted(set(times)))
        object.__setattr__(self, "times", ordered)
        weekdays = self.weekdays
        if weekdays is not None:
            if not weekdays or any(
                not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= 6 for d in weekdays
            ):
                raise InvalidSchedule(
                    f"daily weekdays must be a non-empty list of days 0-6 (0 = Sunday), "
                    f"got {weekdays!r}.",
                    field="schedule",
                    example=DAILY_EXAMPLE,
                )
            weekdays = tuple(sorted(set(weekdays)))
            if len(weekdays) == 7:
                weekdays = None
            object.__setattr__(self, "weekdays", weekdays)
        seconds = tuple(t.hour * 3600 + t.minute * 60 + t.second for t in ordered)
        pattern = DailyPattern(seconds, None if weekdays is None else frozenset(weekdays))
        object.__setattr__(self, "_pattern", pattern)
        object.__setattr__(self, "_timeline", _check_common(self))

    @property
    def is_recurring(self) -> bool:
        return True

    def next_after(self, after: datetime) -> datetime | None:
        fire = next_fire(self._pattern, self._timeline, True, to_instant(after))
        return None if fire is None else from_instant(fire)

    def latest_at_or_before(self, at: datetime) -> datetime | None:
        fire = latest_fire(self._pattern, self._timeline, True, to_instant(at))
        return None if fire is None else from_instant(fire)

    def describe(self) -> str:
        times = [_time_text(t) for t in self.times]
        text = "at " + join_words(times)
        if self.weekdays is None:
            text += " every day"
        else:
            text += " on " + join_words([DAY_WORDS[d] for d in self.weekdays])
        return f"{text} ({self.timezone})"

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": "daily", "times": [_time_text(t) for t in self.times]}
        if self.weekdays is not None:
            spec["weekdays"] = [DAY_NAMES[d] for d in self.weekdays]
        return _common_spec(self, spec)

    def shortest_gap(self) -> timedelta:
        """A lower bound on the time between two fires, ignoring DST shifts."""
        seconds = self._pattern.times
        gaps = [b - a for a, b in pairwise(seconds)]
        gaps.append(DAY - seconds[-1] + seconds[0])
        return timedelta(seconds=min(gaps))
