"""Reading schedules from text and from mappings, and rebuilding stored ones."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from wakecall.errors import InvalidInput, InvalidSchedule

from .base import Schedule
from .cron import CRON_EXAMPLE, DAY_NAMES, MACROS, parse_weekdays
from .durations import format_duration, read_duration
from .examples import INSTANT_SHAPE, instant_example
from .kinds import (
    DAILY_EXAMPLE,
    RRULE_SPEC_EXAMPLE,
    CronSchedule,
    DailySchedule,
    IntervalSchedule,
    OnceSchedule,
    OnDemandSchedule,
    RruleSchedule,
)
from .rule_text import (
    RULE_EXAMPLE,
    DateValue,
    RuleParts,
    format_rule,
    local_wall,
    looks_like_rule,
    read_date_value,
    read_rule_text,
)
from .timeline import EPOCH, ONE_SECOND, load_zone, local_instant, timeline_for

__all__ = ["parse_schedule", "schedule_from_spec"]

MAX_TEXT = 1000
SCHEDULE_EXAMPLE = (
    '"0 9 * * MON-FRI", "@every 30m", "in 5m" or {"type": "daily", "times": ["09:00"]}'
)
INTERVAL_EXAMPLE = '"@every 30m" or {"type": "interval", "every": "30m"}'
ONCE_EXAMPLE = '"in 5m" or {"type": "once", "in": "5m"}'

_ISO_START = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME_OF_DAY = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_KEYS = {
    "cron": ("expression",),
    "interval": ("every", "start"),
    "once": ("at", "in"),
    "daily": ("times", "weekdays"),
    "rrule": ("rule", "start", "exdates"),
    "on_demand": (),
}
_COMMON_KEYS = ("type", "kind", "timezone", "jitter")


def parse_schedule(
    value: str | Mapping[str, Any],
    *,
    timezone: str | None = None,
    now: datetime,
    jitter: str | float | timedelta | None = None,
    min_interval: timedelta = timedelta(seconds=1),
) -> Schedule:
    """Read a schedule an agent or a person wrote, and check it against ``now``.

    ``value`` is text (a cron expression, ``@daily`` and friends, ``@every 30m`` or
    ``every 30m``, ``in 5m``, an ISO-8601 instant, an RFC 5545 rule) or a mapping with a
    ``type`` key (``cron``, ``interval``, ``once``, ``daily``, ``rrule``, ``on_demand``).
    ``timezone`` and ``jitter``, when given, win over the mapping's own keys.

    Rules are accepted as calendar tools and Codex automations write them: ``RRULE:FREQ=...``
    or the bare ``FREQ=...`` value, optionally with ``DTSTART`` and ``EXDATE`` lines (separated
    by newlines or spaces), or ``{"type": "rrule", "rule": "FREQ=...", "start": "...",
    "exdates": [...]}`` (``rule`` may hold the ``DTSTART``/``EXDATE`` lines instead). Their
    times are read in the schedule's zone; a ``TZID=`` wins for its own value, a ``Z`` value
    is UTC, and with no zone given the ``DTSTART``'s ``TZID`` becomes the schedule's zone.
    Without a ``DTSTART`` a rule starts at ``now`` and its times of day left out are 0
    (``FREQ=WEEKLY;BYDAY=FR;BYHOUR=9`` fires at 09:00:00, not at the creation's minute).

    Raises ``InvalidSchedule`` (``UnknownTimeZone`` for a zone) with a message that says what
    was wrong and shows an example, also when the schedule never fires, fires only in the
    past, or fires more often than ``min_interval``.
    """
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise InvalidInput(
            f"now must be an aware datetime, got {now!r}.",
            field="now",
            example="datetime.now(UTC)",
        )
    if isinstance(value, str):
        _check_length(value, "schedule")
        if looks_like_rule(value):
            schedule = _rule_from_text(value, timezone, _jitter(jitter), now)
        else:
            zone = "UTC" if timezone is None else timezone
            schedule = _from_text(value, zone, _jitter(jitter), now)
    elif isinstance(value, Mapping):
        schedule = _from_mapping(value, timezone=timezone, jitter=jitter, now=now)
    else:
        raise InvalidSchedule(
            f"must be text or an object, got {type(value).__name__}.",
            field="schedule",
            example=SCHEDULE_EXAMPLE,
        )
    _check_against_now(value, schedule, now, min_interval)
    return schedule


def schedule_from_spec(spec: Mapping[str, Any]) -> Schedule:
    """Rebuild a schedule from ``Schedule.to_spec()``. Makes no check that depends on the
    current time: a stored ``once`` in the past is fine."""
    if not isinstance(spec, Mapping):
        raise InvalidSchedule(
            f"a stored schedule must be an object, got {type(spec).__name__}.",
            field="schedule",
            example='{"type": "cron", "expression": "0 9 * * *", "timezone": "UTC"}',
        )
    return _from_mapping(spec, timezone=None, jitter=None, now=None)


def _check_length(text: str, name: str) -> None:
    if len(text) > MAX_TEXT:
        raise InvalidSchedule(
            f"{name} is {len(text)} characters long; at most {MAX_TEXT} are accepted.",
            field="schedule",
            example=SCHEDULE_EXAMPLE,
        )


def _jitter(value: object) -> timedelta | None:
    if value is None:
        return None
    jitter = read_duration(value, "jitter", InvalidSchedule)
    return jitter or None


def _from_text(text: str, zone: str, jitter: timedelta | None, now: datetime | None) -> Schedule:
    stripped = text.strip()
    if not stripped:
        raise InvalidSchedule("is empty.", field="schedule", example=SCHEDULE_EXAMPLE)
    lowered = stripped.lower()
    if lowered in ("on demand", "on_demand", "@on_demand"):
        return OnDemandSchedule(timezone=zone, jitter=jitter)
    if lowered.startswith("@every") or lowered.startswith("every "):
        rest = stripped[6:] if lowered.startswith("@every") else stripped[5:]
        if not rest[:1].isspace():
            raise InvalidSchedule(
                f"could not read {stripped!r}; put the interval after '@every '.",
                field="schedule",
                example=INTERVAL_EXAMPLE,
            )
        every = read_duration(rest.strip(), "schedule", InvalidSchedule)
        return IntervalSchedule(every, _needs_now(now, stripped), zone, jitter)
    if lowered.startswith("@"):
        if lowered not in MACROS:
            raise InvalidSchedule(
                f"unknown macro {stripped!r}; use one of {', '.join(MACROS)} or '@every 30m'.",
                field="schedule",
                example='"@daily"',
            )
        return CronSchedule(stripped, zone, jitter)
    if lowered.startswith("in "):
        delay = read_duration(stripped[3:].strip(), "schedule", InvalidSchedule)
        if not delay:
            raise InvalidSchedule(
                f"{stripped!r} is not in the future; the delay must be longer than zero.",
                field="schedule",
                example=ONCE_EXAMPLE,
            )
        base = _needs_now(now, stripped, truncate=False)
        return OnceSchedule(base + delay, zone, jitter)
    if _ISO_START.match(stripped):
        return OnceSchedule(_instant(stripped, zone, now), zone, jitter)
    if len(stripped.split()) == 1:
        raise InvalidSchedule(
            f"could not read {stripped!r} as a schedule; write a cron expression, "
            "'@every 30m', 'in 5m' or an ISO-8601 instant.",
            field="schedule",
            example=SCHEDULE_EXAMPLE,
        )
    return CronSchedule(stripped, zone, jitter)


def _needs_now(now: datetime | None, what: str, *, truncate: bool = True) -> datetime:
    if now is None:
        raise InvalidSchedule(
            f"{what!r} is relative to the current time, so it cannot be stored as is; store "
            "an absolute start or instant.",
            field="schedule",
            example=f'{{"type": "once", "at": {INSTANT_SHAPE}}}',
        )
    moment = now.astimezone(UTC)
    return moment.replace(microsecond=0) if truncate else moment


def _instant(value: object, zone: str, now: datetime | None) -> datetime:
    """An ISO-8601 instant; a naive one is read in ``zone`` (first occurrence when clocks go
    back, the end of the gap when they jump forward). ``now`` dates the examples."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        _check_length(value, "instant")
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidSchedule(
                f"could not read {value!r} as an ISO-8601 instant.",
                field="schedule",
                example=instant_example(now),
            ) from None
    else:
        raise InvalidSchedule(
            f"an instant must be ISO-8601 text, got {type(value).__name__}.",
            field="schedule",
            example=instant_example(now),
        )
    if moment.utcoffset() is not None:
        return moment.astimezone(UTC)
    zone_info = load_zone(zone)
    local = moment.replace(tzinfo=zone_info, fold=0)
    as_utc = local.astimezone(UTC)
    if as_utc.astimezone(zone_info).replace(tzinfo=None) == moment:
        return as_utc
    # the local time falls in a gap: the first valid instant after it
    wall = (moment.replace(microsecond=0) - EPOCH.replace(tzinfo=None)) // ONE_SECOND
    return EPOCH + local_instant(timeline_for(zone), wall) * ONE_SECOND


def _from_mapping(
    value: Mapping[str, Any],
    *,
    timezone: str | None,
    jitter: object,
    now: datetime | None,
) -> Schedule:
    kind = value.get("type", value.get("kind"))
    if "type" in value and "kind" in value and value["type"] != value["kind"]:
        raise InvalidSchedule(
            f"'type' ({value['type']!r}) and 'kind' ({value['kind']!r}) disagree; give one.",
            field="schedule",
            example=SCHEDULE_EXAMPLE,
        )
    if not isinstance(kind, str) or kind not in _KEYS:
        raise InvalidSchedule(
            f"needs a 'type' of cron, interval, once, daily, rrule or on_demand, got {kind!r}.",
            field="schedule",
            example='{"type": "cron", "expression": "0 9 * * MON-FRI"}',
        )
    allowed = _KEYS[kind]
    unknown = sorted(str(key) for key in value if key not in allowed and key not in _COMMON_KEYS)
    if unknown:
        names = ", ".join(repr(name[:50]) for name in unknown[:10])
        raise InvalidSchedule(
            f"unknown key{'s' if len(unknown) > 1 else ''} {names} in a {kind} schedule; "
            f"it takes {', '.join(allowed + _COMMON_KEYS[2:])}.",
            field="schedule",
            example=_KIND_EXAMPLES[kind],
        )
    for key, item in value.items():
        if isinstance(item, str):
            _check_length(item, repr(key))
    zone = timezone if timezone is not None else value.get("timezone", "UTC")
    if zone is None or (kind == "rrule" and timezone is None and "timezone" not in value):
        zone = None if kind == "rrule" else "UTC"  # a rule's DTSTART may name the zone
    if zone is not None and not isinstance(zone, str):
        raise InvalidSchedule(
            f"timezone must be text, got {type(zone).__name__}.",
            field="timezone",
            example='"Europe/Paris"',
        )
    jitter_value = _jitter(jitter if jitter is not None else value.get("jitter"))
    if kind == "rrule":
        return _rule_from_mapping(value, zone, jitter_value, now)
    assert zone is not None
    load_zone(zone)
    if kind == "cron":
        return _cron_from_mapping(value, zone, jitter_value, now)
    if kind == "interval":
        return _interval_from_mapping(value, zone, jitter_value, now)
    if kind == "once":
        return _once_from_mapping(value, zone, jitter_value, now)
    if kind == "on_demand":
        return OnDemandSchedule(timezone=zone, jitter=jitter_value)
    return _daily_from_mapping(value, zone, jitter_value)


_KIND_EXAMPLES = {
    "cron": '{"type": "cron", "expression": "0 9 * * MON-FRI"}',
    "interval": '{"type": "interval", "every": "30m"}',
    "once": '{"type": "once", "in": "5m"}',
    "daily": DAILY_EXAMPLE,
    "rrule": RRULE_SPEC_EXAMPLE,
    "on_demand": '"on demand" or {"type": "on_demand"}',
}


def _rule_from_text(
    text: str, zone: str | None, jitter: timedelta | None, now: datetime | None
) -> Schedule:
    found = read_rule_text(text)
    return _rule_schedule(
        found.parts, found.start, found.exdates, zone or found.start_zone or "UTC", jitter, now
    )


def _rule_from_mapping(
    value: Mapping[str, Any], zone: str | None, jitter: timedelta | None, now: datetime | None
) -> Schedule:
    rule = value.get("rule")
    if not isinstance(rule, str) or not rule.strip():
        raise InvalidSchedule(
            f"a rrule schedule needs a 'rule', an RFC 5545 RRULE, got {rule!r}.",
            field="schedule",
            example=RRULE_SPEC_EXAMPLE,
        )
    found = read_rule_text(rule)
    start = found.start
    if value.get("start") is not None:
        if start is not None:
            raise InvalidSchedule(
                "the rule has a DTSTART and the schedule a 'start'; give one of them.",
                field="schedule",
                example=RRULE_SPEC_EXAMPLE,
            )
        start = _rule_date(value["start"], "start")
    extra = value.get("exdates")
    if extra is None:
        extra = []
    if not isinstance(extra, list | tuple):
        raise InvalidSchedule(
            f"'exdates' must be a list of date-times, got {type(extra).__name__}.",
            field="schedule",
            example=RRULE_SPEC_EXAMPLE,
        )
    exdates = (*found.exdates, *(_rule_date(item, "exdate") for item in extra[:1001]))
    zone = zone or found.start_zone or "UTC"
    return _rule_schedule(found.parts, start, exdates, zone, jitter, now)


def _rule_date(value: object, what: str) -> DateValue:
    if isinstance(value, datetime | date):
        return DateValue(value)
    if isinstance(value, str):
        return read_date_value(value, None, what)
    raise InvalidSchedule(
        f"a rule's {what} must be a local date-time (YYYY-MM-DDTHH:MM:SS), got {value!r}.",
        field="schedule",
        example=RRULE_SPEC_EXAMPLE,
    )


_HOURLY, _MINUTELY, _SECONDLY = 4, 5, 6


def _rule_schedule(
    parts: RuleParts,
    start: DateValue | None,
    exdates: tuple[DateValue, ...],
    zone: str,
    jitter: timedelta | None,
    now: datetime | None,
) -> Schedule:
    if not isinstance(zone, str):
        raise InvalidSchedule(
            f"timezone must be text, got {type(zone).__name__}.",
            field="timezone",
            example='"Europe/Paris"',
        )
    load_zone(zone)
    if start is None:
        # no DTSTART: from now, at the times of day the rule names (0 for those it leaves out)
        moment = _needs_now(now, "a rule without DTSTART")
        start_wall: datetime | date = moment.astimezone(load_zone(zone)).replace(tzinfo=None)
        parts = parts.with_parts(
            byhour=parts.byhour or ((0,) if parts.freq < _HOURLY else ()),
            byminute=parts.byminute or ((0,) if parts.freq < _MINUTELY else ()),
            bysecond=parts.bysecond or ((0,) if parts.freq < _SECONDLY else ()),
        )
    else:
        start_wall = local_wall(start, zone)
    if not isinstance(start_wall, datetime):
        start_wall = datetime.combine(start_wall, time())
    walls = tuple(local_wall(value, zone) for value in exdates)
    return RruleSchedule(format_rule(parts), start_wall, walls, zone, jitter)


def _cron_from_mapping(
    value: Mapping[str, Any], zone: str, jitter: timedelta | None, now: datetime | None
) -> Schedule:
    expression = value.get("expression")
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidSchedule(
            f"a cron schedule needs an 'expression', got {expression!r}.",
            field="schedule",
            example=_KIND_EXAMPLES["cron"],
        )
    stripped = expression.strip()
    if stripped.lower().startswith("@every"):
        return _from_text(stripped, zone, jitter, now)
    if stripped.startswith("@") and stripped.lower() not in MACROS:
        return _from_text(stripped, zone, jitter, now)
    return CronSchedule(stripped, zone, jitter)


def _interval_from_mapping(
    value: Mapping[str, Any], zone: str, jitter: timedelta | None, now: datetime | None
) -> Schedule:
    if value.get("every") is None:
        raise InvalidSchedule(
            "an interval schedule needs 'every'.",
            field="schedule",
            example=_KIND_EXAMPLES["interval"],
        )
    every = read_duration(value["every"], "schedule", InvalidSchedule)
    start_value = value.get("start")
    start = (
        _needs_now(now, "an interval without a start")
        if start_value is None
        else _instant(start_value, zone, now)
    )
    return IntervalSchedule(every, start, zone, jitter)


def _once_from_mapping(
    value: Mapping[str, Any], zone: str, jitter: timedelta | None, now: datetime | None
) -> Schedule:
    at, delay = value.get("at"), value.get("in")
    if (at is None) == (delay is None):
        raise InvalidSchedule(
            "a once schedule needs exactly one of 'at' (an instant) or 'in' (a delay).",
            field="schedule",
            example='{"type": "once", "in": "5m"}',
        )
    if at is not None:
        return OnceSchedule(_instant(at, zone, now), zone, jitter)
    amount = read_duration(delay, "schedule", InvalidSchedule)
    if not amount:
        raise InvalidSchedule(
            "'in' must be longer than zero.", field="schedule", example=ONCE_EXAMPLE
        )
    return OnceSchedule(_needs_now(now, f"in {delay}", truncate=False) + amount, zone, jitter)


def _daily_from_mapping(value: Mapping[str, Any], zone: str, jitter: timedelta | None) -> Schedule:
    raw_times = value.get("times")
    if isinstance(raw_times, str):
        raw_times = [raw_times]
    if not isinstance(raw_times, list | tuple) or not raw_times:
        raise InvalidSchedule(
            f"a daily schedule needs 'times', a list of local times, got {raw_times!r}.",
            field="schedule",
            example=DAILY_EXAMPLE,
        )
    if len(raw_times) > 1440:
        raise InvalidSchedule(
            f"a daily schedule takes at most 1440 times, got {len(raw_times)}.",
            field="schedule",
            example=DAILY_EXAMPLE,
        )
    times = tuple(_time_of_day(item) for item in raw_times)
    weekdays = _weekdays(value.get("weekdays"))
    return DailySchedule(times, weekdays, zone, jitter)


def _time_of_day(item: object) -> time:
    if isinstance(item, time):
        return item
    match = _TIME_OF_DAY.fullmatch(item.strip()) if isinstance(item, str) else None
    if match:
        hour, minute, second = (int(part or 0) for part in match.groups())
        if hour < 24 and minute < 60 and second < 60:
            return time(hour, minute, second)
    raise InvalidSchedule(
        f"daily time {item!r} is not a local time HH:MM (00:00-23:59) or HH:MM:SS.",
        field="schedule",
        example=DAILY_EXAMPLE,
    )


_DAY_WORDS = {
    "SUNDAY": 0,
    "MONDAY": 1,
    "TUESDAY": 2,
    "WEDNESDAY": 3,
    "THURSDAY": 4,
    "FRIDAY": 5,
    "SATURDAY": 6,
}


def _weekdays(raw: object) -> tuple[int, ...] | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        days, special = parse_weekdays(raw)
        if special:
            raise InvalidSchedule(
                f"daily weekdays {raw!r} cannot use L or #; use a cron schedule for those.",
                field="schedule",
                example=DAILY_EXAMPLE,
            )
        return tuple(sorted(days))
    if not isinstance(raw, list | tuple) or not raw or len(raw) > 7 * 4:
        raise InvalidSchedule(
            f"daily weekdays must be a non-empty list of day names, got {raw!r}.",
            field="schedule",
            example=DAILY_EXAMPLE,
        )
    days_found = set()
    for item in raw:
        name = item.strip().upper() if isinstance(item, str) else None
        if name in DAY_NAMES:
            days_found.add(DAY_NAMES.index(name))
        elif name in _DAY_WORDS:
            days_found.add(_DAY_WORDS[name])
        elif isinstance(item, int) and not isinstance(item, bool) and 0 <= item <= 7:
            days_found.add(item % 7)
        else:
            raise InvalidSchedule(
                f"daily weekday {item!r} is not a day name (MON-SUN) or number 0-7 "
                "(0 and 7 are Sunday).",
                field="schedule",
                example=DAILY_EXAMPLE,
            )
    return tuple(sorted(days_found))


def _check_against_now(
    value: object, schedule: Schedule, now: datetime, min_interval: timedelta
) -> None:
    if isinstance(schedule, OnceSchedule):
        if schedule.at <= now:
            raise InvalidSchedule(
                f"once at {schedule.at.isoformat()} is not in the future (now is "
                f"{now.astimezone(UTC).isoformat()}).",
                field="schedule",
                example=ONCE_EXAMPLE,
            )
        return
    if isinstance(schedule, OnDemandSchedule):
        return
    if isinstance(schedule, IntervalSchedule):
        gap = schedule.every
    elif isinstance(schedule, RruleSchedule):
        _check_rule_fires(schedule, now)
        gap = schedule.shortest_gap() if min_interval > ONE_SECOND else ONE_SECOND
    elif isinstance(schedule, CronSchedule | DailySchedule):
        if schedule.next_after(now) is None:
            raise InvalidSchedule(
                f"{_shown(value)} never fires within 50 years of now.",
                field="schedule",
                example=CRON_EXAMPLE,
            )
        gap = schedule.shortest_gap() if min_interval > ONE_SECOND else ONE_SECOND
    else:  # pragma: no cover - every kind is handled above
        return
    if gap < min_interval:
        raise InvalidSchedule(
            f"{_shown(value)} can fire every {format_duration(gap)}, more often than the "
            f"minimum interval of {format_duration(min_interval)}.",
            field="schedule",
            example=f'"@every {format_duration(min_interval)}"',
        )


def _check_rule_fires(schedule: RruleSchedule, now: datetime) -> None:
    if schedule.next_after(now) is not None:
        return
    zone = load_zone(schedule.timezone)
    local_now = now.astimezone(zone).replace(tzinfo=None)
    next_year = f"{local_now + timedelta(days=365):%Y%m%d}"
    example = f'"RRULE:FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0;UNTIL={next_year}"'
    ends = schedule.ends
    if ends is not None and ends <= local_now:
        what = "its last fire (COUNT)" if "COUNT=" in schedule.rule else "its UNTIL"
        raise InvalidSchedule(
            f"the rule has ended: {what} is {ends:%Y-%m-%d %H:%M:%S} ({schedule.timezone}), "
            f"before now ({local_now:%Y-%m-%d %H:%M:%S}); give a later UNTIL or DTSTART.",
            field="schedule",
            example=example,
        )
    raise InvalidSchedule(
        "the rule never fires within 50 years of now (EXDATE may drop every fire left).",
        field="schedule",
        example=RULE_EXAMPLE,
    )


def _shown(value: object) -> str:
    if isinstance(value, str):
        return repr(value.strip())
    return "this schedule"
