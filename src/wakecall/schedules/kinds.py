"""The schedule kinds: cron, interval, once, daily, rrule, and on demand, as frozen dataclasses.

Constructing one validates it (expression, zone, times, jitter) but makes no check that depends
on the current time; ``parse_schedule`` adds those.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any, ClassVar

from wakecall.errors import InvalidSchedule

from .cron import DAY_NAMES, DAY_WORDS, CronPattern, compile_cron, join_words
from .durations import DURATION_EXAMPLE, describe_duration, format_duration
from .examples import INSTANT_SHAPE
from .rule_search import RulePattern, wall_from_naive
from .rule_text import (
    RULE_EXAMPLE,
    DateValue,
    RuleParts,
    format_rule,
    local_wall,
    read_rule_value,
)
from .rule_words import describe_rule
from .timeline import (
    DAY,
    EPOCH_ORDINAL,
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
    "RruleSchedule",
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


MAX_EXDATES = 1000
RULE_YEARS = (1900, 3000)
#: (A `start` and `exdates`, local date-times, may be given too; an example with dates would one
#: day be in the past.)
RRULE_SPEC_EXAMPLE = '{"type": "rrule", "rule": "FREQ=WEEKLY;BYDAY=TU,TH;BYHOUR=9;BYMINUTE=0"}'


def _rule_wall(value: object, zone: str, what: str) -> datetime | date:
    """A start or an exclusion on the local clock: a naive datetime as is, an aware one moved
    to the zone's clock, a date (exclusions only) as a whole day."""
    if isinstance(value, datetime):
        moment = local_wall(DateValue(value), zone)
    elif isinstance(value, date) and what == "exdate":
        moment = value
    else:
        raise InvalidSchedule(
            f"a rule's {what} must be a date-time, got {value!r}.",
            field="schedule",
            example=RRULE_SPEC_EXAMPLE,
        )
    if isinstance(moment, datetime) and moment.microsecond:
        raise InvalidSchedule(
            f"a rule's {what} must be in whole seconds, got {value!r}.",
            field="schedule",
            example=RRULE_SPEC_EXAMPLE,
        )
    low, high = RULE_YEARS
    if not low <= moment.year <= high:
        raise InvalidSchedule(
            f"a rule's {what} must fall between the years {low} and {high}, got {value!r}.",
            field="schedule",
            example=RRULE_SPEC_EXAMPLE,
        )
    return moment


def _placed_parts(parts: RuleParts, zone: str) -> RuleParts:
    """``UNTIL`` on the local clock; a date means through the end of that day."""
    if not isinstance(parts.until, DateValue):
        return parts
    until = local_wall(parts.until, zone)
    if not isinstance(until, datetime):
        until = datetime.combine(until, time(23, 59, 59))
    return parts.with_parts(until=until)


@dataclass(frozen=True)
class RruleSchedule:
    """An RFC 5545 recurrence rule: ``rule`` is the ``RRULE`` value (``FREQ=...;...``), run
    from ``start`` (its ``DTSTART``, a naive wall time on the local clock of ``timezone``),
    without the occurrences in ``exdates`` (wall times; a date drops every occurrence on that
    local day). dateutil's ``rrule`` expands it, on the local clock (see ``rule_search.py``).

    What RFC 5545 takes from ``DTSTART`` when a part is left out, it takes from ``start``: the
    times of day of a daily or longer rule, the weekday of a weekly one, the day of a monthly
    one, the date of a yearly one; ``start`` also counts the ``INTERVAL`` and the ``COUNT``.
    As in dateutil, ``start`` itself fires only when it matches the rule.

    DST, as for cron: daily and longer rules (``FREQ=DAILY``, ``WEEKLY``, ``MONTHLY``,
    ``YEARLY``) fire at fixed local times and keep them, once when clocks go back and at the
    first valid instant when they jump forward (RFC 5545 would move a skipped 02:30 to 03:30;
    this fires at 03:00, as a fixed-time cron job does). ``FREQ=HOURLY``, ``MINUTELY`` and
    ``SECONDLY`` follow real time, like a cron job with ``*`` in its hour or minute: their
    periods are counted on the local clock, both passes of a repeated hour fire and a skipped
    hour does not. Each next fire is strictly later than the last.

    ``UNTIL`` is a wall time too (an instant given with ``Z`` is moved to the local clock; a
    date means through its end). ``COUNT`` counts occurrences from ``start`` before
    ``exdates`` drop any, as RFC 5545 says, and must be reached within 50 years of it.
    """

    rule: str
    start: datetime
    exdates: tuple[datetime | date, ...] = ()
    timezone: str = "UTC"
    jitter: timedelta | None = None
    kind: ClassVar[str] = "rrule"
    _parts: RuleParts = field(init=False, repr=False, compare=False)
    _pattern: RulePattern = field(init=False, repr=False, compare=False)
    _timeline: Timeline | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.rule, str):
            raise InvalidSchedule("a rule must be text.", field="schedule", example=RULE_EXAMPLE)
        timeline = _check_common(self)
        zone = self.timezone
        parts = _placed_parts(read_rule_value(self.rule), zone)
        start = _rule_wall(self.start, zone, "start")
        assert isinstance(start, datetime)
        if not isinstance(self.exdates, tuple | list) or len(self.exdates) > MAX_EXDATES:
            raise InvalidSchedule(
                f"a rule takes a list of at most {MAX_EXDATES} exdates.",
                field="schedule",
                example=RRULE_SPEC_EXAMPLE,
            )
        placed = {_rule_wall(value, zone, "exdate") for value in self.exdates}
        exdates = tuple(sorted(placed, key=_sort_key))
        walls = frozenset(wall_from_naive(d) for d in exdates if isinstance(d, datetime))
        days = frozenset(d.toordinal() - EPOCH_ORDINAL for d in exdates if type(d) is date)
        pattern = RulePattern(parts, start, walls, days)
        object.__setattr__(self, "rule", format_rule(parts))
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "exdates", exdates)
        object.__setattr__(self, "_parts", parts)
        object.__setattr__(self, "_pattern", pattern)
        object.__setattr__(self, "_timeline", timeline)

    @property
    def is_recurring(self) -> bool:
        return True

    @property
    def fixed_time(self) -> bool:
        """True when fires keep their local time across DST changes (daily and longer)."""
        return self._pattern.fixed

    @property
    def ends(self) -> datetime | None:
        """The wall time of the last occurrence (``COUNT``) or the ``UNTIL``; None when open."""
        return self._pattern.until

    def next_after(self, after: datetime) -> datetime | None:
        fire = next_fire(self._pattern, self._timeline, self._pattern.fixed, to_instant(after))
        return None if fire is None else from_instant(fire)

    def latest_at_or_before(self, at: datetime) -> datetime | None:
        fire = latest_fire(self._pattern, self._timeline, self._pattern.fixed, to_instant(at))
        return None if fire is None else from_instant(fire)

    def describe(self) -> str:
        return describe_rule(
            self._parts, self._pattern.options, self.start, self.exdates, self.timezone
        )

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "type": "rrule",
            "rule": self.rule,
            "start": self.start.isoformat(),
        }
        if self.exdates:
            spec["exdates"] = [d.isoformat() for d in self.exdates]
        return _common_spec(self, spec)

    def shortest_gap(self) -> timedelta:
        """A lower bound on the time between two fires, ignoring DST shifts."""
        return timedelta(seconds=self._pattern.shortest_gap())


def _sort_key(value: datetime | date) -> datetime:
    return value if isinstance(value, datetime) else datetime.combine(value, time())
