"""Cron expressions: parsing, validation, matching wall times and describing them in words.

An expression is compiled once into precomputed field tables (for each field value, the next and
the previous allowed value) and cached by its text, so a million tasks sharing a handful of
expressions share a handful of tables. Matching jumps field by field (month, day, hour, minute,
second) like cronsim and Vixie cron do, so finding the next or the previous match never walks
tick by tick.

Dialect: 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first; ``*``,
``?`` (same as ``*``), values, ranges ``a-b``, steps ``*/n``, ``a/n``, ``a-b/n``, lists; month
names JAN-DEC and weekday names SUN-SAT in any case (ranges too); 0 and 7 are Sunday; ``L``
(last day of the month), ``LW`` (last weekday of the month), ``15W`` (the weekday nearest the
15th: the Friday before when it is a Saturday, the Monday after when it is a Sunday, never
crossing into another month, as Quartz defines it; a day the month does not have never matches),
``5L`` (last Friday of the month), ``5#2`` (second Friday of the month); macros ``@yearly
@annually @monthly @weekly @daily @midnight @hourly``. When both day-of-month and day-of-week
are restricted a day matching either fires (classic cron OR); when either field starts with ``*``
both must match (as Debian cron and cronsim decide it).
"""

from __future__ import annotations

import functools
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from typing import NamedTuple

from wakecall.errors import InvalidSchedule

from .timeline import DAY, EPOCH_ORDINAL

CRON_EXAMPLE = '"0 9 * * MON-FRI" (09:00 on weekdays) or "*/15 * * * *" (every 15 minutes)'
NEAREST_EXAMPLE = '"0 9 15W * *" (09:00 on the weekday nearest the 15th)'

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
MONTH_WORDS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
DAY_WORDS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True)
class _FieldSpec:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0

    @property
    def bounds(self) -> str:
        text = f"{self.low}-{self.high}"
        if self.names:
            text += f" or {self.names[0]}-{self.names[-1]}"
        return text


SECOND = _FieldSpec("second", 0, 59)
MINUTE = _FieldSpec("minute", 0, 59)
HOUR = _FieldSpec("hour", 0, 23)
DAY_OF_MONTH = _FieldSpec("day-of-month", 1, 31)
MONTH = _FieldSpec("month", 1, 12, MONTH_NAMES, 1)
DAY_OF_WEEK = _FieldSpec("day-of-week", 0, 7, DAY_NAMES, 0)


def _error(spec: _FieldSpec, term: str, why: str) -> InvalidSchedule:
    return InvalidSchedule(
        f"{spec.name} field {term!r} {why}.", field="schedule", example=CRON_EXAMPLE
    )


def _value(spec: _FieldSpec, text: str, term: str) -> int:
    if text.isdigit() and text.isascii():
        number = int(text)
        if not spec.low <= number <= spec.high:
            raise _error(spec, term, f"is out of range {spec.bounds}")
        return number
    if text in spec.names:
        return spec.names.index(text) + spec.name_base
    if spec.names:
        raise _error(spec, term, f"is not a number or name in {spec.bounds}")
    raise _error(spec, term, f"is not a number in {spec.bounds}")


def _step(spec: _FieldSpec, text: str, term: str) -> int:
    if not (text.isdigit() and text.isascii()):
        raise _error(spec, term, "has a step that is not a whole number")
    step = int(text)
    if step < 1:
        raise _error(spec, term, "has a step of 0; a step is at least 1")
    return step


@dataclass
class _Extras:
    last_day: bool = False  # L in day-of-month
    last_weekday: bool = False  # LW in day-of-month
    nearest_days: frozenset[int] = frozenset()  # 15W in day-of-month
    last_dows: frozenset[int] = frozenset()  # 5L in day-of-week
    nth_dows: frozenset[tuple[int, int]] = frozenset()  # 5#2 in day-of-week


def _nearest_term(spec: _FieldSpec, base: str, slash: str, term: str) -> int:
    """The day of a ``15W`` term (the weekday nearest the 15th)."""
    if spec is not DAY_OF_MONTH:
        why = "uses W (the weekday nearest a day), which only goes in the day-of-month field"
    elif slash or not (base[:-1].isdigit() and base[:-1].isascii()):
        why = "needs a single day before W (no range, step or L)"
    else:
        return _value(spec, base[:-1], term)
    raise InvalidSchedule(
        f"{spec.name} field {term!r} {why}.", field="schedule", example=NEAREST_EXAMPLE
    )


def _parse_field(spec: _FieldSpec, text: str, extras: _Extras) -> frozenset[int]:
    values: set[int] = set()
    for term in text.split(","):
        if not term:
            raise _error(spec, text, "has an empty list item")
        base, slash, step_text = term.partition("/")
        if base.endswith("W") and (base != "LW" or spec is not DAY_OF_MONTH):
            extras.nearest_days = extras.nearest_days | {_nearest_term(spec, base, slash, term)}
            continue
        if spec is DAY_OF_MONTH and base in ("L", "LW"):
            if slash:
                raise _error(spec, term, "cannot have a step after L")
            if base == "L":
                extras.last_day = True
            else:
                extras.last_weekday = True
            continue
        if spec is DAY_OF_WEEK and ("#" in base or (base.endswith("L") and len(base) > 1)):
            if slash:
                raise _error(spec, term, "cannot have a step after L or #")
            if "#" in base:
                day_text, _, nth_text = base.partition("#")
                day = _value(spec, day_text, term) % 7
                if not (nth_text.isdigit() and nth_text.isascii() and 1 <= int(nth_text) <= 5):
                    raise _error(spec, term, "needs a week number 1-5 after #, as in FRI#2")
                extras.nth_dows = extras.nth_dows | {(day, int(nth_text))}
            else:
                extras.last_dows = extras.last_dows | {_value(spec, base[:-1], term) % 7}
            continue
        if base in ("*", "?"):
            low, high = spec.low, spec.high
        elif "-" in base:
            low_text, _, high_text = base.partition("-")
            low, high = _value(spec, low_text, term), _value(spec, high_text, term)
            if high < low:
                raise _error(spec, term, "is a range that ends before it starts")
        else:
            low = _value(spec, base, term)
            high = spec.high if slash else low
        step = _step(spec, step_text, term) if slash else 1
        values.update(range(low, high + 1, step))
    if spec is DAY_OF_WEEK and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


class _DaySpec(NamedTuple):
    days: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    last_day: bool
    last_weekday: bool
    nearest_days: frozenset[int]
    last_dows: frozenset[int]
    nth_dows: frozenset[tuple[int, int]]
    day_and: bool


@functools.lru_cache(maxsize=8192)  # bounded for the garbage collector's full passes
def _day_table(spec: _DaySpec, length: int, first_weekday: int) -> tuple[int, ...]:
    """The matching days of a month with ``length`` days starting on ``first_weekday``."""
    matching = []
    last_weekday = _last_weekday(length, first_weekday)
    for day in range(1, length + 1):
        weekday = (first_weekday + day - 1) % 7
        dom = (
            day in spec.days
            or (spec.last_day and day == length)
            or (spec.last_weekday and day == last_weekday)
            or any(
                day == _nearest_weekday(near, length, first_weekday) for near in spec.nearest_days
            )
        )
        dow = (
            weekday in spec.weekdays
            or (weekday in spec.last_dows and day + 7 > length)
            or (weekday, (day + 6) // 7) in spec.nth_dows
        )
        if (dom and dow) if spec.day_and else (dom or dow):
            matching.append(day)
    return tuple(matching)


@functools.lru_cache(maxsize=4096)
def _tables(
    values: frozenset[int], size: int
) -> tuple[frozenset[int], tuple[int | None, ...], tuple[int | None, ...]]:
    """One shared copy of a field's values with its next and previous lookup tables."""
    return values, _next_table(values, size), _prev_table(values, size)


def parse_weekdays(text: str) -> tuple[frozenset[int], bool]:
    """A day-of-week field ("MON-FRI", "1,3,5") as days 0-6 (0 = Sunday), and whether it used
    ``L`` or ``#``, which only cron schedules understand."""
    extras = _Extras()
    days = _parse_field(DAY_OF_WEEK, text.strip().upper(), extras)
    return days, bool(extras.last_dows or extras.nth_dows)


def _next_table(values: frozenset[int], size: int) -> tuple[int | None, ...]:
    """``table[v]`` = smallest allowed value >= v; ``table[size]`` = None (carry)."""
    table: list[int | None] = [None] * (size + 1)
    following: int | None = None
    for v in range(size - 1, -1, -1):
        if v in values:
            following = v
        table[v] = following
    return tuple(table)


def _prev_table(values: frozenset[int], size: int) -> tuple[int | None, ...]:
    """``table[v + 1]`` = largest allowed value <= v; ``table[0]`` = None (borrow)."""
    table: list[int | None] = [None] * (size + 1)
    preceding: int | None = None
    for v in range(size):
        if v in values:
            preceding = v
        table[v + 1] = preceding
    return tuple(table)


_month_cache: dict[int, tuple[int, int, int]] = {}


def _month_info(year: int, month: int) -> tuple[int, int, int]:
    """(days in month, weekday of the 1st with 0 = Sunday, ordinal of the 1st)."""
    key = year * 16 + month
    info = _month_cache.get(key)
    if info is None:
        first = date(year, month, 1)
        length = _DAYS_IN_MONTH[month]
        if month == 2 and not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
            length = 28
        info = (length, (first.weekday() + 1) % 7, first.toordinal())
        _month_cache[key] = info
    return info


class CronPattern:
    """A compiled cron expression (see the module docstring for the dialect)."""

    def __init__(self, expression: str):
        text = " ".join(expression.split())
        self.expression = text
        expanded = MACROS.get(text.lower(), text)
        fields = expanded.upper().split(" ")
        if len(fields) not in (5, 6):
            raise InvalidSchedule(
                f"cron expression {text!r} has {len(fields)} field"
                f"{'' if len(fields) == 1 else 's'}; it needs 5 (minute hour day-of-month "
                "month day-of-week) or 6 (second first).",
                field="schedule",
                example=CRON_EXAMPLE,
            )
        self.has_seconds = len(fields) == 6
        if not self.has_seconds:
            fields.insert(0, "0")
        self.fields = tuple(fields)
        raw_second, raw_minute, raw_hour, raw_dom, raw_month, raw_dow = fields
        extras = _Extras()
        self.seconds = _parse_field(SECOND, raw_second, extras)
        self.minutes = _parse_field(MINUTE, raw_minute, extras)
        self.hours = _parse_field(HOUR, raw_hour, extras)
        self.days = _parse_field(DAY_OF_MONTH, raw_dom, extras)
        self.months = _parse_field(MONTH, raw_month, extras)
        self.weekdays = _parse_field(DAY_OF_WEEK, raw_dow, extras)
        self.extras = extras
        wild = ("*", "?")
        self.day_and = raw_dom.startswith(wild) or raw_dow.startswith(wild)
        # Fixed-time job: no wildcard in the hour, minute (or second) field. Such a job keeps
        # its local time across DST changes; others follow real time (see timeline.py).
        clock_fields = (raw_second, raw_minute, raw_hour) if self.has_seconds else fields[1:3]
        self.fixed = not any(f.startswith(wild) for f in clock_fields)
        self._check_possible()

        # tables are shared between patterns with equal fields
        self.seconds, self._next_second, self._prev_second = _tables(self.seconds, 60)
        self.minutes, self._next_minute, self._prev_minute = _tables(self.minutes, 60)
        self.hours, self._next_hour, self._prev_hour = _tables(self.hours, 24)
        self.months, self._next_month, self._prev_month = _tables(self.months, 13)
        self._day_spec = _DaySpec(
            _tables(self.days, 32)[0],
            _tables(self.weekdays, 7)[0],
            extras.last_day,
            extras.last_weekday,
            extras.nearest_days,
            extras.last_dows,
            extras.nth_dows,
            self.day_and,
        )

    def _check_possible(self) -> None:
        days = self.days | self.extras.nearest_days
        if not self.day_and or not days or self.extras.last_day or self.extras.last_weekday:
            return
        longest = max(_DAYS_IN_MONTH[m] for m in self.months)
        if min(days) > longest:
            months = ", ".join(MONTH_WORDS[m - 1] for m in sorted(self.months))
            raise InvalidSchedule(
                f"cron expression {self.expression!r} never fires: no day-of-month "
                f"{min(days)} in {months}.",
                field="schedule",
                example='"0 0 28 2 *" (February 28) or "0 0 L 2 *" (last day of February)',
            )

    def next_match(self, wall: int, limit: int) -> int | None:
        if wall >= limit:
            return None
        days, second_of_day = divmod(wall, DAY)
        start = date.fromordinal(EPOCH_ORDINAL + days)
        year, month, day = start.year, start.month, start.day
        hour, rest = divmod(second_of_day, 3600)
        minute, second = divmod(rest, 60)
        limit_year = date.fromordinal(EPOCH_ORDINAL + limit // DAY).year
        next_month, next_hour = self._next_month, self._next_hour
        next_minute, next_second = self._next_minute, self._next_second
        while True:
            found_month = next_month[month]
            if found_month is None:
                year += 1
                if year > limit_year:
                    return None
                month, day, hour, minute, second = 1, 1, 0, 0, 0
                continue
            if found_month != month:
                month, day, hour, minute, second = found_month, 1, 0, 0, 0
            length, first_weekday, first_ordinal = _month_info(year, month)
            table = _day_table(self._day_spec, length, first_weekday)
            index = bisect_left(table, day)
            if index == len(table):
                month, day, hour, minute, second = month + 1, 1, 0, 0, 0
                continue
            if table[index] != day:
                day, hour, minute, second = table[index], 0, 0, 0
            found_hour = next_hour[hour]
            if found_hour is None:
                day, hour, minute, second = day + 1, 0, 0, 0
                continue
            if found_hour != hour:
                hour, minute, second = found_hour, 0, 0
            found_minute = next_minute[minute]
            if found_minute is None:
                hour, minute, second = hour + 1, 0, 0
                continue
            if found_minute != minute:
                minute, second = found_minute, 0
            found_second = next_second[second]
            if found_second is None:
                minute, second = minute + 1, 0
                continue
            result = (first_ordinal + day - 1 - EPOCH_ORDINAL) * DAY
            result += hour * 3600 + minute * 60 + found_second
            return result if result < limit else None

    def prev_match(self, wall: int, limit: int) -> int | None:
        if wall < limit:
            return None
        days, second_of_day = divmod(wall, DAY)
        start = date.fromordinal(EPOCH_ORDINAL + days)
        year, month, day = start.year, start.month, start.day
        hour, rest = divmod(second_of_day, 3600)
        minute, second = divmod(rest, 60)
        limit_year = date.fromordinal(EPOCH_ORDINAL + limit // DAY).year
        prev_month, prev_hour = self._prev_month, self._prev_hour
        prev_minute, prev_second = self._prev_minute, self._prev_second
        while True:
            found_month = prev_month[month + 1]
            if found_month is None:
                year -= 1
                if year < limit_year:
                    return None
                month, day, hour, minute, second = 12, 31, 23, 59, 59
                continue
            if found_month != month:
                month, day, hour, minute, second = found_month, 31, 23, 59, 59
            length, first_weekday, first_ordinal = _month_info(year, month)
            table = _day_table(self._day_spec, length, first_weekday)
            index = bisect_right(table, day) - 1
            if index < 0:
                month, day, hour, minute, second = month - 1, 31, 23, 59, 59
                continue
            if table[index] != day:
                day, hour, minute, second = table[index], 23, 59, 59
            found_hour = prev_hour[hour + 1]
            if found_hour is None:
                day, hour, minute, second = day - 1, 23, 59, 59
                continue
            if found_hour != hour:
                hour, minute, second = found_hour, 59, 59
            found_minute = prev_minute[minute + 1]
            if found_minute is None:
                hour, minute, second = hour - 1, 59, 59
                continue
            if found_minute != minute:
                minute, second = found_minute, 59
            found_second = prev_second[second + 1]
            if found_second is None:
                minute, second = minute - 1, 59
                continue
            result = (first_ordinal + day - 1 - EPOCH_ORDINAL) * DAY
            result += hour * 3600 + minute * 60 + found_second
            return result if result >= limit else None

    def shortest_gap(self) -> int:
        """A lower bound, in seconds, on the time between two fires (ignoring DST shifts)."""
        seconds = sorted(self.seconds)
        if len(seconds) > 1:
            within_minute = min(b - a for a, b in pairwise(seconds))
            if within_minute == 1:
                return 1
        times = sorted(
            h * 3600 + m * 60 + s for h in self.hours for m in self.minutes for s in seconds
        )
        gaps = [b - a for a, b in pairwise(times)]
        gaps.append(DAY - times[-1] + times[0])
        return min(gaps)

    def describe(self) -> str:
        time_text = self._describe_time()
        day_text = self._describe_days()
        month_text = self._describe_months()
        extras = self.extras
        if (
            len(self.days) == 1
            and len(self.months) == 1
            and len(self.weekdays) == 7
            and self.day_and
            and not (extras.last_day or extras.last_weekday or extras.last_dows)
            and not (extras.nth_dows or extras.nearest_days)
        ):
            (day,), (month,) = self.days, self.months
            day_text, month_text = f"on {MONTH_WORDS[month - 1]} {day}", ""
        if not day_text and not month_text and time_text.startswith("at ") and ":" in time_text:
            day_text = "every day"
        return " ".join(p for p in (time_text, day_text, month_text) if p)

    def _describe_time(self) -> str:
        raw_second, raw_minute, raw_hour = self.fields[:3]
        seconds, minutes, hours = self.seconds, self.minutes, self.hours
        if len(seconds) * len(minutes) * len(hours) <= 6:
            show_seconds = seconds != {0}
            times = sorted(
                f"{h:02d}:{m:02d}" + (f":{s:02d}" if show_seconds else "")
                for h in hours
                for m in minutes
                for s in seconds
            )
            return "at " + join_words(times)
        all_hours = len(hours) == 24
        if seconds == {0} and minutes == {0} and all_hours:
            return "every hour"
        parts = []
        if seconds != {0}:
            if len(seconds) == 60:
                parts.append("every second")
            elif step := _star_step(raw_second):
                parts.append(f"every {step} seconds")
            else:
                parts.append("at second" + _plural(seconds) + " " + _runs(seconds, str))
        if len(minutes) == 60:
            if not parts:
                parts.append("every minute")
        elif step := _star_step(raw_minute):
            parts.append(("of " if parts else "") + f"every {step} minutes")
        else:
            parts.append(
                ("of minute" if parts else "at minute")
                + _plural(minutes)
                + " "
                + _runs(minutes, str)
                + (" of every hour" if all_hours else "")
            )
        if not all_hours:
            if step := _star_step(raw_hour):
                parts.append(f"during every {_ordinal(step)} hour")
            else:
                parts.append("during hour" + _plural(hours) + " " + _runs(hours, str))
        return " ".join(parts)

    def _describe_days(self) -> str:
        extras = self.extras
        dom_parts = []
        if self.days and len(self.days) < 31:
            if step := _star_step(self.fields[3]):
                dom_parts.append(f"every {_ordinal(step)} day of the month")
            else:
                dom_parts.append(
                    "day" + _plural(self.days) + " " + _runs(self.days, str) + " of the month"
                )
        if extras.last_day:
            dom_parts.append("the last day of the month")
        if extras.last_weekday:
            dom_parts.append("the last weekday of the month")
        if extras.nearest_days:
            near = extras.nearest_days
            dom_parts.append(
                f"the weekday{_plural(near)} nearest day{_plural(near)} "
                f"{join_words([str(d) for d in sorted(near)])} of the month"
            )
        dow_parts = []
        if self.weekdays and len(self.weekdays) < 7:
            dow_parts.append(_runs(self.weekdays, lambda d: DAY_WORDS[d]))
        for day in sorted(extras.last_dows):
            dow_parts.append(f"the last {DAY_WORDS[day]} of the month")
        for day, nth in sorted(extras.nth_dows):
            dow_parts.append(f"the {_ORDINALS[nth]} {DAY_WORDS[day]} of the month")
        dom_text = " or ".join(dom_parts)
        dow_text = " or ".join(dow_parts)
        if dom_text and dow_text:
            if self.day_and:
                return f"on {dom_text} if it is {dow_text}"
            return f"on {dom_text} or on {dow_text}"
        if dom_text or dow_text:
            return "on " + (dom_text or dow_text)
        return ""

    def _describe_months(self) -> str:
        if len(self.months) == 12:
            return ""
        return "in " + _runs(self.months, lambda m: MONTH_WORDS[m - 1])


def _star_step(raw: str) -> int | None:
    """n when a field is exactly ``*/n``."""
    if raw.startswith(("*/", "?/")) and raw[2:].isdigit():
        return int(raw[2:])
    return None


def _ordinal(number: int) -> str:
    if number == 1:
        return ""
    suffix = (
        "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{number}{suffix}"


_ORDINALS = ("", "first", "second", "third", "fourth", "fifth")


def _last_weekday(length: int, first_weekday: int) -> int:
    last_weekday = (first_weekday + length - 1) % 7
    if last_weekday == 0:  # Sunday
        return length - 2
    if last_weekday == 6:  # Saturday
        return length - 1
    return length


def _nearest_weekday(day: int, length: int, first_weekday: int) -> int | None:
    """The weekday nearest ``day`` in a month of ``length`` days whose 1st is ``first_weekday``
    (0 = Sunday), never in another month (Quartz's ``W``); None when the month is shorter."""
    if day > length:
        return None
    weekday = (first_weekday + day - 1) % 7
    if weekday == 6:  # Saturday: the Friday before, or Monday the 3rd for the 1st
        return 3 if day == 1 else day - 1
    if weekday == 0:  # Sunday: the Monday after, or the Friday before for the last day
        return day - 2 if day == length else day + 1
    return day


def _plural(values: frozenset[int]) -> str:
    return "" if len(values) == 1 else "s"


def join_words(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _runs(values: frozenset[int], namer: Callable[[int], str]) -> str:
    """Values as words with runs of 3+ collapsed: "1 through 5, 10 and 15"."""
    ordered = sorted(values)
    groups: list[list[int]] = []
    for value in ordered:
        if groups and value == groups[-1][-1] + 1:
            groups[-1].append(value)
        else:
            groups.append([value])
    words: list[str] = []
    for group in groups:
        if len(group) >= 3:
            words.append(f"{namer(group[0])} through {namer(group[-1])}")
        else:
            words.extend(namer(v) for v in group)
    return join_words(words)


@functools.lru_cache(maxsize=4096)
def compile_cron(expression: str) -> CronPattern:
    """The compiled pattern for an expression; raises ``InvalidSchedule`` when it is wrong."""
    return CronPattern(expression)
