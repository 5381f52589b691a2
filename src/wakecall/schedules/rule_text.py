"""Reading and writing RFC 5545 recurrence rules: the ``RRULE`` value, and the ``DTSTART`` and
``EXDATE`` lines calendar tools write around it.

What is read (section 3.3.10 of RFC 5545, with its MUST NOTs enforced):

- ``RRULE:FREQ=...;...`` or the bare value ``FREQ=...;...``, in any case; parts ``FREQ``
  (required), ``INTERVAL`` (1-10000), ``COUNT`` (1-10000) or ``UNTIL``, ``WKST``, ``BYSETPOS``,
  ``BYMONTH``, ``BYMONTHDAY``, ``BYYEARDAY``, ``BYWEEKNO``, ``BYDAY`` (``TU``, ``+2TU``,
  ``-1FR``), ``BYHOUR``, ``BYMINUTE``, ``BYSECOND``. dateutil's ``BYEASTER`` is not RFC 5545
  and is refused, as are ``RDATE`` and ``EXRULE``.
- ``DTSTART`` and ``EXDATE`` lines, with an optional ``TZID=`` and ``VALUE=DATE``: values
  ``20261201T090000`` (local), ``20261201T080000Z`` (UTC) or ``20261201`` (a date); ISO-8601
  ``2026-12-01T09:00:00`` is read too.
- Lines separated by newlines or spaces; folded lines (a line break followed by a space, as
  calendar files wrap long lines) are unfolded first, and spaces around ``;``, ``,``, ``=``
  and ``:`` are dropped (``FREQ=DAILY; BYHOUR=9`` is one rule).

Dates stay as written here (``DateValue``); ``kinds.RruleSchedule`` places them on the local
clock of the schedule's zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import NamedTuple

from wakecall.errors import InvalidSchedule

from .timeline import EPOCH, ONE_SECOND, from_instant, load_zone, local_instant, timeline_for

__all__ = [
    "FREQ_NAMES",
    "RULE_EXAMPLE",
    "WEEKDAY_CODES",
    "DateValue",
    "RuleParts",
    "RuleText",
    "format_rule",
    "format_wall",
    "local_wall",
    "looks_like_rule",
    "read_date_value",
    "read_rule_text",
    "read_rule_value",
]

RULE_EXAMPLE = '"RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;BYHOUR=9;BYMINUTE=0"'
LINES_EXAMPLE = (
    '"DTSTART;TZID=Europe/Paris:20261201T090000 RRULE:FREQ=WEEKLY;BYDAY=TU '
    'EXDATE;TZID=Europe/Paris:20261215T090000"'
)
# index = dateutil's constant (YEARLY = 0 ... SECONDLY = 6)
FREQ_NAMES = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY")
YEARLY, MONTHLY, WEEKLY, DAILY = 0, 1, 2, 3
# index = dateutil's (and Python's) weekday: Monday = 0
WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
MAX_COUNT = 10_000
MAX_INTERVAL = 10_000

_BYDAY = re.compile(r"([+-]?)(\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)")
_INTEGER = re.compile(r"[+-]?\d{1,3}")
_BASIC = re.compile(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z)?)?")
_LINE_NAMES = ("RRULE", "DTSTART", "EXDATE")

# name -> (low, high, negatives allowed)
_LISTS = {
    "BYSECOND": (0, 59, False),
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False),
    "BYSETPOS": (1, 366, True),
}
_PART_NAMES = ("FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST", "BYDAY", *_LISTS)


def _refuse(message: str, example: str = RULE_EXAMPLE) -> InvalidSchedule:
    return InvalidSchedule(message, field="schedule", example=example)


class DateValue(NamedTuple):
    """A ``DTSTART``, ``EXDATE`` or ``UNTIL`` value as written: a ``date``, a naive local
    ``datetime`` (in ``zone`` when a ``TZID=`` named one) or an aware one (``Z``, an offset)."""

    value: date | datetime
    zone: str | None = None


@dataclass(frozen=True)
class RuleParts:
    """The parts of an ``RRULE`` value. An empty tuple is a part left out; ``until`` is a naive
    wall time on the schedule's local clock once the schedule places it (``DateValue`` before)."""

    freq: int
    interval: int = 1
    count: int | None = None
    until: DateValue | datetime | None = None
    wkst: int = 0
    bysetpos: tuple[int, ...] = ()
    bymonth: tuple[int, ...] = ()
    bymonthday: tuple[int, ...] = ()
    byyearday: tuple[int, ...] = ()
    byweekno: tuple[int, ...] = ()
    byday: tuple[tuple[int, int | None], ...] = ()  # (weekday, nth or None)
    byhour: tuple[int, ...] = ()
    byminute: tuple[int, ...] = ()
    bysecond: tuple[int, ...] = ()

    def with_parts(self, **changes: object) -> RuleParts:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class RuleText:
    """What a rule text holds: its rule, its ``DTSTART`` (None when left out), its ``EXDATE``
    values, and the ``TZID`` of its ``DTSTART``."""

    parts: RuleParts
    start: DateValue | None
    exdates: tuple[DateValue, ...]
    start_zone: str | None


def looks_like_rule(text: str) -> bool:
    """True for text that is meant as an RFC 5545 rule rather than cron or an instant."""
    upper = text.lstrip().upper()
    return upper.startswith(("RRULE", "FREQ=", "DTSTART", "EXDATE")) or "RRULE:" in upper


def read_rule_text(text: str) -> RuleText:
    """Read rule text: an ``RRULE`` with optional ``DTSTART`` and ``EXDATE`` lines."""
    unfolded = re.sub(r"\r?\n[ \t]", "", text)
    # "FREQ=DAILY; BYHOUR=9" is one line: spaces around ; , = and : are not separators
    unfolded = re.sub(r"[ \t]*([;,=:])[ \t]*", r"\1", unfolded)
    parts: RuleParts | None = None
    start: DateValue | None = None
    start_zone: str | None = None
    exdates: list[DateValue] = []
    for line in unfolded.split():
        name, params, value = _split_line(line)
        if name == "RRULE":
            if parts is not None:
                raise _refuse("a rule text holds one RRULE; write one task per rule.")
            if params:
                raise _refuse(f"RRULE takes no parameters, got {';'.join(params)!r}.")
            parts = read_rule_value(value)
        elif name == "DTSTART":
            if start is not None:
                raise _refuse("DTSTART is given twice; give the rule one start.")
            zone = _line_zone(params, name)
            values = value.split(",")
            if len(values) != 1:
                raise _refuse("DTSTART takes one value.")
            start = read_date_value(values[0], zone, name)
            start_zone = zone
        else:  # EXDATE
            zone = _line_zone(params, name)
            exdates.extend(read_date_value(item, zone, name) for item in value.split(","))
    if parts is None:
        raise _refuse(f"{text.strip()[:60]!r} has no RRULE line; add one.")
    return RuleText(parts, start, tuple(exdates), start_zone)


def _split_line(line: str) -> tuple[str, list[str], str]:
    if line.upper().startswith("FREQ="):
        return "RRULE", [], line
    head, colon, value = line.partition(":")
    name, *params = head.split(";")
    name = name.upper()
    if not colon or name not in _LINE_NAMES:
        shown = name if colon else line
        if name in ("RDATE", "EXRULE"):
            why = f"{name} is not supported; add a once task for an extra date"
        else:
            why = f"could not read {shown[:60]!r} in a rule; the lines are RRULE, DTSTART, EXDATE"
        raise _refuse(
            f"{why}.",
            example=LINES_EXAMPLE,
        )
    if not value:
        raise _refuse(f"{name} has no value after ':'.")
    return name, params, value


def _line_zone(params: list[str], name: str) -> str | None:
    zone = None
    for param in params:
        key, _, value = param.partition("=")
        key = key.upper()
        if key == "TZID" and value:
            zone = value.strip('"')
            load_zone(zone)
        elif key == "VALUE" and value.upper() in ("DATE", "DATE-TIME"):
            continue
        else:
            raise _refuse(
                f"{name} parameter {param[:40]!r} is not understood; use TZID=<IANA zone> or "
                "VALUE=DATE.",
                example=LINES_EXAMPLE,
            )
    return zone


def read_date_value(text: str, zone: str | None, name: str) -> DateValue:
    """``20261201T090000``, ``20261201T080000Z``, ``20261201`` or ISO-8601 extended."""
    match = _BASIC.fullmatch(text.strip().upper())
    try:
        if match:
            year, month, day, hour, minute, second, utc = match.groups()
            if hour is None:
                return DateValue(date(int(year), int(month), int(day)), None)
            moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
            if utc:
                return DateValue(moment.replace(tzinfo=UTC), None)
            return DateValue(moment, zone)
        if len(text) == 10:
            return DateValue(date.fromisoformat(text), None)
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is None or moment.microsecond:
        raise _refuse(
            f"{name} value {text[:40]!r} is not a date-time: YYYYMMDDTHHMMSS (local), "
            "YYYYMMDDTHHMMSSZ (UTC) or YYYY-MM-DDTHH:MM:SS.",
            example=LINES_EXAMPLE,
        )
    if moment.utcoffset() is not None:
        return DateValue(moment, None)
    return DateValue(moment, zone)


def read_rule_value(text: str) -> RuleParts:
    """The parts of an ``RRULE`` value such as ``FREQ=WEEKLY;BYDAY=TU,TH``."""
    value = text.strip()
    if value.upper().startswith("RRULE:"):
        value = value[6:]
    found: dict[str, str] = {}
    for item in value.split(";"):
        if not item:
            continue
        key, equals, content = item.partition("=")
        key = key.strip().upper()
        if key == "BYEASTER":
            raise _refuse(
                "BYEASTER is not part of RFC 5545 and is not supported; name the dates with "
                "BYMONTH and BYMONTHDAY, or add a once task for each."
            )
        if key not in _PART_NAMES or not equals:
            raise _refuse(
                f"unknown rule part {item[:40]!r}; a rule takes "
                f"{', '.join(_PART_NAMES)}, each as NAME=VALUE."
            )
        if key in found:
            raise _refuse(f"rule part {key} is given twice.")
        if not content.strip():
            raise _refuse(f"rule part {key} has no value.")
        found[key] = content.strip().upper()
    return _parts_from(found)


def _parts_from(found: dict[str, str]) -> RuleParts:
    freq_text = found.get("FREQ")
    if freq_text not in FREQ_NAMES:
        given = "no FREQ" if freq_text is None else f"FREQ={freq_text[:20]}"
        raise _refuse(f"a rule needs FREQ, one of {', '.join(FREQ_NAMES)}; got {given}.")
    freq = FREQ_NAMES.index(freq_text)
    if "COUNT" in found and "UNTIL" in found:
        raise _refuse("give COUNT or UNTIL, not both (RFC 5545).")
    lists = {
        name.lower(): _int_list(name, found[name], *_LISTS[name])
        for name in _LISTS
        if name in found
    }
    parts = RuleParts(
        freq=freq,
        interval=_bounded("INTERVAL", found.get("INTERVAL", "1"), MAX_INTERVAL),
        count=_bounded("COUNT", found["COUNT"], MAX_COUNT) if "COUNT" in found else None,
        until=read_date_value(found["UNTIL"], None, "UNTIL") if "UNTIL" in found else None,
        wkst=_weekday("WKST", found.get("WKST", "MO")),
        byday=_byday(found["BYDAY"]) if "BYDAY" in found else (),
        **lists,
    )
    _check_combinations(parts)
    return parts


def _bounded(name: str, text: str, high: int) -> int:
    if not (text.isdigit() and text.isascii()) or not 1 <= int(text) <= high:
        raise _refuse(f"{name} must be a whole number from 1 to {high}, got {text[:20]!r}.")
    return int(text)


def _weekday(name: str, text: str) -> int:
    if text not in WEEKDAY_CODES:
        raise _refuse(f"{name} must be one of {', '.join(WEEKDAY_CODES)}, got {text[:20]!r}.")
    return WEEKDAY_CODES.index(text)


def _int_list(name: str, text: str, low: int, high: int, negatives: bool) -> tuple[int, ...]:
    values: set[int] = set()
    for item in text.split(","):
        number = int(item) if _INTEGER.fullmatch(item) else None
        if number is None or not low <= abs(number) <= high or (number < 0 and not negatives):
            bounds = f"-{high} to -{low} or {low} to {high}" if negatives else f"{low} to {high}"
            raise _refuse(f"{name} takes whole numbers {bounds}, got {item[:20]!r}.")
        values.add(number)
    return tuple(sorted(values, key=lambda v: (v < 0, v)))


def _byday(text: str) -> tuple[tuple[int, int | None], ...]:
    days: set[tuple[int, int | None]] = set()
    for item in text.split(","):
        match = _BYDAY.fullmatch(item)
        if not match:
            raise _refuse(
                f"BYDAY item {item[:20]!r} is not a day (MO, TU, WE, TH, FR, SA, SU), "
                "optionally with a position such as +2TU or -1FR."
            )
        sign, number, code = match.groups()
        nth = None
        if number is not None:
            nth = -int(number) if sign == "-" else int(number)
            if not 1 <= abs(nth) <= 53:
                raise _refuse(f"BYDAY item {item!r} needs a position from 1 to 53 (or -1 to -53).")
        elif sign:
            raise _refuse(f"BYDAY item {item!r} has a sign but no position, as in -1FR.")
        days.add((WEEKDAY_CODES.index(code), nth))
    return tuple(sorted(days, key=lambda d: (d[1] is not None, d[1] or 0, d[0])))


def _check_combinations(parts: RuleParts) -> None:
    """The combinations RFC 5545 says a rule MUST NOT have."""
    freq_name = FREQ_NAMES[parts.freq]
    if any(nth is not None for _, nth in parts.byday):
        if parts.freq not in (YEARLY, MONTHLY):
            raise _refuse(
                f"BYDAY positions such as 2TU only go with FREQ=MONTHLY or YEARLY, not "
                f"{freq_name}.",
                example='"RRULE:FREQ=MONTHLY;BYDAY=2TU;BYHOUR=9;BYMINUTE=0"',
            )
        if parts.byweekno:
            raise _refuse("BYDAY positions such as 2TU cannot go with BYWEEKNO.")
    if parts.bymonthday and parts.freq == WEEKLY:
        raise _refuse("BYMONTHDAY cannot go with FREQ=WEEKLY; use FREQ=MONTHLY.")
    if parts.byyearday and parts.freq in (MONTHLY, WEEKLY, DAILY):
        raise _refuse(f"BYYEARDAY cannot go with FREQ={freq_name}; use FREQ=YEARLY.")
    if parts.byweekno and parts.freq != YEARLY:
        raise _refuse(f"BYWEEKNO only goes with FREQ=YEARLY, not {freq_name}.")
    others = (
        parts.bymonth,
        parts.bymonthday,
        parts.byyearday,
        parts.byweekno,
        parts.byday,
        parts.byhour,
        parts.byminute,
        parts.bysecond,
    )
    if parts.bysetpos and not any(others):
        raise _refuse(
            "BYSETPOS picks among the times other BY parts make, so it needs one of them.",
            example='"RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=2;BYHOUR=9;BYMINUTE=0" '
            "(the 2nd weekday of the month)",
        )


def local_wall(value: DateValue, zone: str) -> datetime | date:
    """A ``DTSTART``, ``EXDATE`` or ``UNTIL`` value on the local clock of ``zone`` (naive, to
    the second). A date stays a date. A time written in another zone (``TZID=``) or as an
    instant is moved to ``zone``'s clock; a time its own zone skips is read as the first valid
    instant after the gap, a repeated one as its first occurrence."""
    moment, written_in = value
    if not isinstance(moment, datetime):
        return moment
    if moment.utcoffset() is None:
        if written_in is None or written_in == zone:
            return moment
        naive_epoch = EPOCH.replace(tzinfo=None)
        wall = (moment - naive_epoch) // ONE_SECOND
        moment = from_instant(local_instant(timeline_for(written_in), wall))
    return moment.astimezone(load_zone(zone)).replace(tzinfo=None, microsecond=0)


def format_wall(moment: datetime | date) -> str:
    """A naive wall time (or a date) in RFC 5545's basic form: 20261201T090000, 20261201."""
    if isinstance(moment, datetime):
        return moment.strftime("%Y%m%dT%H%M%S")
    return moment.strftime("%Y%m%d")


def _byday_text(day: tuple[int, int | None]) -> str:
    weekday, nth = day
    return ("" if nth is None else f"{nth:+d}".lstrip("+")) + WEEKDAY_CODES[weekday]


def _until_text(until: DateValue | datetime) -> str:
    if isinstance(until, datetime):
        return format_wall(until)
    value = until.value
    if isinstance(value, datetime) and value.utcoffset() is not None:
        return format_wall(value.astimezone(UTC).replace(tzinfo=None)) + "Z"
    return format_wall(value)


def format_rule(parts: RuleParts) -> str:
    """The ``RRULE`` value of ``parts`` in a fixed order (canonical once ``until`` is placed on
    the local clock)."""
    items = [f"FREQ={FREQ_NAMES[parts.freq]}"]
    if parts.interval != 1:
        items.append(f"INTERVAL={parts.interval}")
    if parts.count is not None:
        items.append(f"COUNT={parts.count}")
    if parts.until is not None:
        items.append(f"UNTIL={_until_text(parts.until)}")
    if parts.wkst:
        items.append(f"WKST={WEEKDAY_CODES[parts.wkst]}")
    for name in ("BYSETPOS", "BYMONTH", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO"):
        values = getattr(parts, name.lower())
        if values:
            items.append(f"{name}={','.join(str(v) for v in values)}")
    if parts.byday:
        items.append("BYDAY=" + ",".join(_byday_text(day) for day in parts.byday))
    for name in ("BYHOUR", "BYMINUTE", "BYSECOND"):
        values = getattr(parts, name.lower())
        if values:
            items.append(f"{name}={','.join(str(v) for v in values)}")
    return ";".join(items)
