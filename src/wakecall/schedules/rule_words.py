"""An RFC 5545 rule in words: "every 2 weeks on Tuesday and Thursday at 09:00", "on the 2nd
weekday of every month at 09:00", "every hour on the hour during hours 9 through 17"."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any

from .cron import MONTH_WORDS, join_words
from .rule_text import DAILY, MONTHLY, WEEKLY, YEARLY, RuleParts

__all__ = ["describe_rule", "ordinal"]

HOURLY, MINUTELY = 4, 5
# Monday = 0, as in RFC 5545's order of BYDAY codes and in dateutil
DAY_WORDS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_UNITS = ("year", "month", "week", "day", "hour", "minute", "second")
_WORKDAYS = [0, 1, 2, 3, 4]
MAX_TIMES_LISTED = 6
MAX_EXDATES_LISTED = 3


def ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th, ...; -1 is "last", -2 "2nd-to-last"."""
    if number == -1:
        return "last"
    if number < 0:
        return f"{ordinal(-number)}-to-last"
    if 10 <= number % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _runs(values: Iterable[int], namer: Callable[[int], str] = str, joiner: str = "and") -> str:
    """Values as words with runs of 3+ collapsed: "Monday through Friday"."""
    groups: list[list[int]] = []
    for value in sorted(values):
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
    text = join_words(words)
    return text if joiner == "and" or len(words) < 2 else text.replace(" and ", f" {joiner} ")


def _days(weekdays: Iterable[int], joiner: str = "and") -> str:
    return _runs(weekdays, lambda d: DAY_WORDS[d], joiner)


def _every(freq: int, interval: int) -> str:
    unit = _UNITS[freq]
    return f"every {unit}" if interval == 1 else f"every {interval} {unit}s"


def _plural(word: str, values: tuple[int, ...] | list[int]) -> str:
    return word + ("s" if len(values) > 1 else "")


def _monthdays(days: tuple[int, ...]) -> str:
    words = [ordinal(d) for d in days]
    return "the " + join_words(words) + (" day" if days[-1] < 0 else "")


def _picked(parts: RuleParts, options: dict[str, Any]) -> tuple[str, str]:
    """The days a month or a year is narrowed to, as (where, condition): ("the 2nd Tuesday",
    ""), ("the 13th", "if it is a Friday")."""
    positioned = [f"the {ordinal(n)} {DAY_WORDS[d]}" for d, n in parts.byday if n is not None]
    plain = [d for d, n in parts.byday if n is None]
    monthdays = tuple(options["bymonthday"] or ())
    dated = []
    if monthdays:
        dated.append(_monthdays(monthdays))
    if parts.byyearday:
        dated.append("the " + join_words([ordinal(d) for d in parts.byyearday]) + " day")
    if parts.bysetpos:
        if sorted(plain) == _WORKDAYS and not positioned and not dated:
            what = "weekday"
        elif plain and not positioned and not dated:
            what = _days(plain, "or")
        else:
            what = "day"
        positions = join_words([ordinal(p) for p in parts.bysetpos])
        return f"the {positions} {what}", _condition(positioned, [], dated)
    if dated:
        return " and ".join(dated), _condition(positioned, plain, [])
    if positioned:
        return join_words(positioned), _condition([], plain, [])
    if plain:
        return "every " + _days(plain), ""
    return "", ""


def _condition(positioned: list[str], plain: list[int], dated: list[str]) -> str:
    """The day filters that narrow a set further (RFC 5545 BY parts all have to match)."""
    pieces = positioned + dated
    if plain:
        pieces.append("a " + _days(plain, "or"))
    return f"if it is {join_words(pieces)}" if pieces else ""


def _months(months: Iterable[int]) -> str:
    return _runs(months, lambda m: MONTH_WORDS[m - 1])


def _calendar_phrase(parts: RuleParts, options: dict[str, Any]) -> str:
    """When a daily or longer rule falls, without its times of day."""
    freq, interval = parts.freq, parts.interval
    if freq in (MONTHLY, YEARLY):
        return _month_or_year_phrase(parts, options)
    weekdays = sorted(d for d, _ in parts.byday)
    if freq == WEEKLY:
        weekdays = sorted(d.weekday for d in options["byweekday"])
        text = f"{_every(freq, interval)} on {_days(weekdays)}"
    elif weekdays and interval == 1:
        text = "every weekday" if weekdays == _WORKDAYS else "on " + _days(weekdays)
    else:
        text = _every(freq, interval)
        if weekdays:
            text += " if it is a " + _days(weekdays, "or")
    if parts.bymonthday:
        text += " on " + _monthdays(parts.bymonthday)
    if parts.bymonth:
        text += " in " + _months(parts.bymonth)
    return text


def _month_or_year_phrase(parts: RuleParts, options: dict[str, Any]) -> str:
    freq, interval = parts.freq, parts.interval
    period = _every(freq, interval)
    where, condition = _picked(parts, options)
    months = tuple(options["bymonth"] or ())
    if freq == MONTHLY:
        text = f"on {where} of {period}" if where else period
        if months:
            text += " in " + _months(months)
    elif parts.byweekno:
        weeks = join_words([str(w) if w > 0 else ordinal(w) for w in parts.byweekno])
        text = f"{'on ' + where + ' ' if where else ''}in {_plural('week', parts.byweekno)} "
        text += f"{weeks} of {period}"
        if months:
            text += " in " + _months(months)
    elif (
        len(months) == 1
        and options["bymonthday"]
        and min(options["bymonthday"]) > 0
        and not (parts.byday or parts.bysetpos or parts.byyearday)
    ):
        days = join_words([str(d) for d in options["bymonthday"]])
        text = f"on {MONTH_WORDS[months[0] - 1]} {days} {period}"
    elif months:
        text = f"on {where} of {_months(months)} {period}" if where else f"in {_months(months)}"
        text += "" if where else f" {period}"
    else:
        text = f"on {where} of {period}" if where else period
    return f"{text} {condition}" if condition else text


def _times(options: dict[str, Any]) -> str:
    hours, minutes, seconds = options["byhour"], options["byminute"], options["bysecond"]
    times = sorted((h, m, s) for h in hours for m in minutes for s in seconds)
    show_seconds = any(s for _, _, s in times)

    def text(value: tuple[int, int, int]) -> str:
        hour, minute, second = value
        return f"{hour:02d}:{minute:02d}" + (f":{second:02d}" if show_seconds else "")

    if len(times) <= MAX_TIMES_LISTED:
        return "at " + join_words([text(t) for t in times])
    return f"at {len(times)} times from {text(times[0])} to {text(times[-1])}"


def _clock_phrase(parts: RuleParts, options: dict[str, Any]) -> str:
    """When an hourly or finer rule falls: its period, where in it, which hours and days."""
    freq = parts.freq
    words = [_every(freq, parts.interval)]
    minutes, seconds = tuple(options["byminute"] or ()), tuple(options["bysecond"] or ())
    if freq == HOURLY:
        if minutes == (0,) and seconds == (0,):
            words.append("on the hour")
        elif seconds == (0,):
            words.append("at " + join_words([f":{m:02d}" for m in minutes]))
        elif len(minutes) * len(seconds) <= MAX_TIMES_LISTED:
            pairs = [f":{m:02d}:{s:02d}" for m in minutes for s in seconds]
            words.append("at " + join_words(pairs))
        else:
            words.append(f"in {_plural('minute', minutes)} {_runs(minutes)}")
            words.append(f"at {_plural('second', seconds)} {_runs(seconds)}")
    else:
        if parts.byminute:
            words.append(f"in {_plural('minute', minutes)} {_runs(minutes)}")
        if freq == MINUTELY and seconds != (0,):
            words.append(f"at {_plural('second', seconds)} {_runs(seconds)}")
        elif freq > MINUTELY and parts.bysecond:
            words.append(f"in {_plural('second', seconds)} {_runs(seconds)}")
    if parts.byhour:
        words.append(f"during {_plural('hour', parts.byhour)} {_runs(parts.byhour)}")
    weekdays = [d for d, _ in parts.byday]
    if weekdays:
        words.append("on " + _days(weekdays))
    if parts.bymonthday:
        words.append("on " + _monthdays(parts.bymonthday))
    if parts.bymonth:
        words.append("in " + _months(parts.bymonth))
    return " ".join(words)


def _moment(value: datetime | date) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if isinstance(value, datetime) else f"{value:%Y-%m-%d}"


def describe_rule(
    parts: RuleParts,
    options: dict[str, Any],
    start: datetime,
    exdates: tuple[datetime | date, ...],
    timezone: str,
) -> str:
    """The rule in words, with its start (when it counts), its end, its exceptions, its zone."""
    daily_or_longer = parts.freq <= DAILY
    if daily_or_longer:
        text = f"{_calendar_phrase(parts, options)} {_times(options)}"
    else:
        text = _clock_phrase(parts, options)
    if parts.interval > 1 or parts.count is not None:
        text += f", from {start:%Y-%m-%d}" if daily_or_longer else f", from {_moment(start)}"
    if parts.count is not None:
        text += f", {parts.count} time" + ("s" if parts.count > 1 else "")
    if isinstance(parts.until, datetime):
        text += f", until {_moment(parts.until)}"
    if exdates:
        if len(exdates) <= MAX_EXDATES_LISTED:
            text += ", except " + join_words([_moment(d) for d in exdates])
        else:
            text += f", except on {len(exdates)} dates"
    return f"{text} ({timezone})"
