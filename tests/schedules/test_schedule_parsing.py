"""Reading every schedule form, every validation error, durations, specs and descriptions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from wakecall.errors import InvalidInput, InvalidSchedule, UnknownTimeZone
from wakecall.schedules import (
    CronSchedule,
    DailySchedule,
    IntervalSchedule,
    OnceSchedule,
    Schedule,
    format_duration,
    parse_duration,
    parse_schedule,
    schedule_from_spec,
)

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)  # a Monday


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires(schedule: Any, after: datetime, count: int = 5) -> list[datetime]:
    found = []
    cursor = after
    for _ in range(count):
        cursor = schedule.next_after(cursor)
        if cursor is None:
            break
        found.append(cursor)
    return found


# --- cron text ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0 9 * * MON-FRI", [utc(2026, 6, 2, 9), utc(2026, 6, 3, 9), utc(2026, 6, 4, 9)]),
        ("0 9 * * mon-fri", [utc(2026, 6, 2, 9), utc(2026, 6, 3, 9), utc(2026, 6, 4, 9)]),
        (
            "*/15 * * * *",
            [utc(2026, 6, 1, 12, 15), utc(2026, 6, 1, 12, 30), utc(2026, 6, 1, 12, 45)],
        ),
        (
            "1-30/10 13 * * *",
            [utc(2026, 6, 1, 13, 1), utc(2026, 6, 1, 13, 11), utc(2026, 6, 1, 13, 21)],
        ),
        (
            "5/20 13 * * *",
            [utc(2026, 6, 1, 13, 5), utc(2026, 6, 1, 13, 25), utc(2026, 6, 1, 13, 45)],
        ),
        ("0 8,20 * * *", [utc(2026, 6, 1, 20), utc(2026, 6, 2, 8), utc(2026, 6, 2, 20)]),
        ("0 0 1 jan-mar,DEC *", [utc(2026, 12, 1), utc(2027, 1, 1), utc(2027, 2, 1)]),
        ("0 0 * * 0", [utc(2026, 6, 7), utc(2026, 6, 14), utc(2026, 6, 21)]),
        ("0 0 * * 7", [utc(2026, 6, 7), utc(2026, 6, 14), utc(2026, 6, 21)]),
        ("0 0 * * SUN", [utc(2026, 6, 7), utc(2026, 6, 14), utc(2026, 6, 21)]),
        ("0 0 ? * SUN", [utc(2026, 6, 7), utc(2026, 6, 14), utc(2026, 6, 21)]),
        ("0 0 * * FRI-SAT", [utc(2026, 6, 5), utc(2026, 6, 6), utc(2026, 6, 12)]),
        # both day fields restricted: either matches (Friday, or the 13th)
        ("0 0 13 * FRI", [utc(2026, 6, 5), utc(2026, 6, 12), utc(2026, 6, 13), utc(2026, 6, 19)]),
        # day-of-month starting with '*': both must match (odd days that are Mondays)
        ("0 0 */2 * MON", [utc(2026, 6, 15), utc(2026, 6, 29), utc(2026, 7, 13)]),
        ("0 0 L * *", [utc(2026, 6, 30), utc(2026, 7, 31), utc(2026, 8, 31)]),
        ("0 0 L 2 *", [utc(2027, 2, 28), utc(2028, 2, 29)]),
        (
            "0 0 LW * *",
            [
                utc(2026, 6, 30),
                utc(2026, 7, 31),
                utc(2026, 8, 31),
                utc(2026, 9, 30),
                utc(2026, 10, 30),
            ],
        ),
        ("0 0 * * 5L", [utc(2026, 6, 26), utc(2026, 7, 31), utc(2026, 8, 28)]),
        # the weekday nearest the 15th: Saturday 15 August -> Friday 14
        ("0 0 15W * *", [utc(2026, 6, 15), utc(2026, 7, 15), utc(2026, 8, 14)]),
        ("0 0 15w * *", [utc(2026, 6, 15), utc(2026, 7, 15), utc(2026, 8, 14)]),
        # Saturday 1 August -> Monday 3 (never back into July); June has no 31st
        ("0 0 1W,31W 5-8 *", [utc(2026, 7, 1), utc(2026, 7, 31), utc(2026, 8, 3)]),
        ("0 0 * * FRI#2", [utc(2026, 6, 12), utc(2026, 7, 10), utc(2026, 8, 14)]),
        ("0 0 29 2 *", [utc(2028, 2, 29), utc(2032, 2, 29)]),
        ("30 15 10 * * *", [utc(2026, 6, 2, 10, 15, 30), utc(2026, 6, 3, 10, 15, 30)]),
        ("*/20 * * * * *", [utc(2026, 6, 1, 12, 0, 20), utc(2026, 6, 1, 12, 0, 40)]),
        ("  0   9  *  *  *  ", [utc(2026, 6, 2, 9), utc(2026, 6, 3, 9)]),
    ],
)
def test_cron_text_fires_at_the_expected_instants(text: str, expected: list[datetime]) -> None:
    schedule = parse_schedule(text, now=NOW)
    assert isinstance(schedule, CronSchedule)
    assert schedule.kind == "cron"
    assert schedule.is_recurring
    assert fires(schedule, NOW, len(expected)) == expected


@pytest.mark.parametrize(
    ("macro", "expansion"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_cron_macros_fire_like_their_expansion(macro: str, expansion: str) -> None:
    schedule = parse_schedule(macro, now=NOW, timezone="Europe/Paris")
    expanded = parse_schedule(expansion, now=NOW, timezone="Europe/Paris")
    assert fires(schedule, NOW, 6) == fires(expanded, NOW, 6)


def test_cron_schedule_keeps_the_zone_and_reads_fields_in_it() -> None:
    schedule = parse_schedule("0 9 * * *", now=NOW, timezone="America/New_York")
    assert schedule.timezone == "America/New_York"
    assert schedule.next_after(NOW) == utc(2026, 6, 1, 13)  # 09:00 EDT


def test_next_after_accepts_any_aware_zone_and_returns_utc() -> None:
    schedule = parse_schedule("0 9 * * *", now=NOW)
    from zoneinfo import ZoneInfo

    after = datetime(2026, 6, 1, 10, 59, tzinfo=ZoneInfo("Europe/Paris"))  # 08:59 UTC
    result = schedule.next_after(after)
    assert result == utc(2026, 6, 1, 9)
    assert result is not None and result.utcoffset() == timedelta(0)


def test_next_after_is_strictly_later_even_with_microseconds() -> None:
    schedule = parse_schedule("0 9 * * *", now=NOW)
    assert schedule.next_after(utc(2026, 6, 2, 9)) == utc(2026, 6, 3, 9)
    assert schedule.next_after(utc(2026, 6, 2, 8, 59, 59) + timedelta(microseconds=999_999)) == utc(
        2026, 6, 2, 9
    )
    assert schedule.next_after(utc(2026, 6, 2, 9) + timedelta(microseconds=1)) == utc(2026, 6, 3, 9)


@pytest.mark.parametrize(
    "value",
    ["0 9 * * *", "@every 5m", "in 5m", {"type": "daily", "times": ["09:00"]}],
)
def test_every_kind_satisfies_the_schedule_protocol(value: Any) -> None:
    assert isinstance(parse_schedule(value, now=NOW), Schedule)


# --- intervals, once, daily --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "every"),
    [
        ("@every 90s", timedelta(seconds=90)),
        ("@every 45m", timedelta(minutes=45)),
        ("@every 2h", timedelta(hours=2)),
        ("@every 1d", timedelta(days=1)),
        ("@every 1h30m", timedelta(hours=1, minutes=30)),
        ("every 30m", timedelta(minutes=30)),
        ("Every 30 minutes", timedelta(minutes=30)),
    ],
)
def test_every_text_is_an_interval_anchored_at_now(text: str, every: timedelta) -> None:
    now = NOW + timedelta(microseconds=250_000)
    schedule = parse_schedule(text, now=now)
    assert isinstance(schedule, IntervalSchedule)
    assert schedule.kind == "interval"
    assert schedule.every == every
    assert schedule.start == NOW  # whole seconds
    assert fires(schedule, now, 3) == [NOW + every, NOW + 2 * every, NOW + 3 * every]


def test_interval_fires_on_its_anchor_grid_not_after_the_last_run() -> None:
    schedule = IntervalSchedule(timedelta(minutes=30), utc(2026, 6, 1, 9, 10))
    assert schedule.next_after(utc(2026, 6, 1, 9)) == utc(2026, 6, 1, 9, 10)  # the anchor itself
    assert schedule.next_after(utc(2026, 6, 1, 9, 10)) == utc(2026, 6, 1, 9, 40)
    assert schedule.next_after(utc(2026, 6, 1, 11, 55)) == utc(2026, 6, 1, 12, 10)
    assert schedule.latest_at_or_before(utc(2026, 6, 1, 11, 55)) == utc(2026, 6, 1, 11, 40)
    assert schedule.latest_at_or_before(utc(2026, 6, 1, 9, 10)) == utc(2026, 6, 1, 9, 10)
    assert schedule.latest_at_or_before(utc(2026, 6, 1, 9, 9)) is None


@pytest.mark.parametrize(
    ("text", "at"),
    [
        ("in 5m", NOW + timedelta(minutes=5)),
        ("in 1h30m", NOW + timedelta(hours=1, minutes=30)),
        ("IN 90s", NOW + timedelta(seconds=90)),
        ("2026-12-01T09:00:00+01:00", utc(2026, 12, 1, 8)),
        ("2026-12-01T08:00:00Z", utc(2026, 12, 1, 8)),
        ("2026-12-01 08:00:00+00:00", utc(2026, 12, 1, 8)),
        ("2026-12-01T08:00:00", utc(2026, 12, 1, 8)),  # naive: read in the zone (UTC here)
    ],
)
def test_once_text_is_one_instant(text: str, at: datetime) -> None:
    schedule = parse_schedule(text, now=NOW)
    assert isinstance(schedule, OnceSchedule)
    assert schedule.kind == "once"
    assert not schedule.is_recurring
    assert schedule.at == at
    assert schedule.next_after(NOW) == at
    assert schedule.next_after(at) is None
    assert schedule.latest_at_or_before(at) == at
    assert schedule.latest_at_or_before(at - timedelta(seconds=1)) is None


@pytest.mark.parametrize(
    ("text", "zone", "at"),
    [
        ("2026-12-01T09:00:00", "Europe/Paris", utc(2026, 12, 1, 8)),
        # in the spring-forward gap: the first valid instant after it (03:00 EDT)
        ("2026-03-08T02:30:00", "America/New_York", utc(2026, 3, 8, 7)),
        # repeated by the fall-back: the first occurrence (01:30 EDT)
        ("2026-11-01T01:30:00", "America/New_York", utc(2026, 11, 1, 5, 30)),
    ],
)
def test_naive_instant_is_read_in_the_schedule_zone(text: str, zone: str, at: datetime) -> None:
    now = utc(2026, 1, 1)
    schedule = parse_schedule(text, now=now, timezone=zone)
    assert isinstance(schedule, OnceSchedule)
    assert schedule.at == at


def test_daily_mapping_fires_at_each_local_time() -> None:
    schedule = parse_schedule(
        {"type": "daily", "times": ["17:30", "09:00"]}, now=NOW, timezone="Europe/Paris"
    )
    assert isinstance(schedule, DailySchedule)
    assert schedule.kind == "daily"
    assert schedule.times == (time(9), time(17, 30))
    assert fires(schedule, NOW, 3) == [
        utc(2026, 6, 1, 15, 30),
        utc(2026, 6, 2, 7),
        utc(2026, 6, 2, 15, 30),
    ]


def test_daily_mapping_with_weekdays_fires_only_on_those_days() -> None:
    schedule = parse_schedule(
        {"type": "daily", "times": ["09:00:30"], "weekdays": ["MON", "friday", 5, 0]}, now=NOW
    )
    assert isinstance(schedule, DailySchedule)
    assert schedule.weekdays == (0, 1, 5)
    assert fires(schedule, NOW, 4) == [
        utc(2026, 6, 5, 9, 0, 30),
        utc(2026, 6, 7, 9, 0, 30),
        utc(2026, 6, 8, 9, 0, 30),
        utc(2026, 6, 12, 9, 0, 30),
    ]


def test_daily_weekdays_may_be_written_as_a_cron_day_field() -> None:
    schedule = parse_schedule({"type": "daily", "times": "9:00", "weekdays": "MON-FRI"}, now=NOW)
    assert isinstance(schedule, DailySchedule)
    assert schedule.weekdays == (1, 2, 3, 4, 5)
    assert schedule.times == (time(9),)


@pytest.mark.parametrize(
    ("mapping", "kind"),
    [
        ({"type": "cron", "expression": "0 9 * * MON-FRI"}, "cron"),
        ({"kind": "cron", "expression": "@daily"}, "cron"),
        ({"type": "cron", "expression": "@every 5m"}, "interval"),
        ({"type": "interval", "every": "30m"}, "interval"),
        ({"type": "interval", "every": 90, "start": "2026-06-01T13:00:00Z"}, "interval"),
        ({"type": "once", "at": "2026-12-01T09:00:00+01:00"}, "once"),
        ({"type": "once", "in": "5m"}, "once"),
        ({"type": "daily", "times": ["09:00", "17:30"]}, "daily"),
        ({"type": "daily", "times": ["09:00"], "weekdays": ["MON", "FRI"]}, "daily"),
        ({"type": "cron", "expression": "0 9 * * *", "timezone": None}, "cron"),
    ],
)
def test_mappings_with_a_type_build_the_matching_kind(mapping: dict[str, Any], kind: str) -> None:
    schedule = parse_schedule(mapping, now=NOW)
    assert schedule.kind == kind


def test_interval_mapping_anchors_at_start_or_now() -> None:
    anchored = parse_schedule(
        {"type": "interval", "every": "30m", "start": "2026-06-01T13:05:00+00:00"}, now=NOW
    )
    assert isinstance(anchored, IntervalSchedule)
    assert anchored.next_after(NOW) == utc(2026, 6, 1, 13, 5)
    default = parse_schedule({"type": "interval", "every": "30m"}, now=NOW)
    assert isinstance(default, IntervalSchedule)
    assert default.start == NOW


def test_once_mapping_with_in_is_relative_to_now() -> None:
    schedule = parse_schedule({"type": "once", "in": "1h30m"}, now=NOW)
    assert isinstance(schedule, OnceSchedule)
    assert schedule.at == NOW + timedelta(hours=1, minutes=30)


def test_mapping_timezone_and_jitter_apply_and_keyword_arguments_win() -> None:
    mapping = {
        "type": "cron",
        "expression": "0 9 * * *",
        "timezone": "Europe/Paris",
        "jitter": "30s",
    }
    from_mapping = parse_schedule(mapping, now=NOW)
    assert from_mapping.timezone == "Europe/Paris"
    assert from_mapping.jitter == timedelta(seconds=30)
    overridden = parse_schedule(mapping, now=NOW, timezone="Asia/Tokyo", jitter=5)
    assert overridden.timezone == "Asia/Tokyo"
    assert overridden.jitter == timedelta(seconds=5)


@pytest.mark.parametrize(
    ("jitter", "expected"),
    [
        ("5m", timedelta(minutes=5)),
        (30, timedelta(seconds=30)),
        (1.5, timedelta(seconds=1.5)),
        (timedelta(seconds=7), timedelta(seconds=7)),
        ("0s", None),
        (None, None),
    ],
)
def test_jitter_accepts_durations_and_treats_zero_as_none(
    jitter: str | float | timedelta | None, expected: timedelta | None
) -> None:
    assert parse_schedule("@hourly", now=NOW, jitter=jitter).jitter == expected


# --- errors ------------------------------------------------------------------------------------

LONG = "0 9 * * * " + "x" * 1000


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("61 * * * *", "minute field '61' is out of range 0-59"),
        ("* 24 * * *", "hour field '24' is out of range 0-23"),
        ("* * 0 * *", "day-of-month field '0' is out of range 1-31"),
        ("* * * 13 *", "month field '13' is out of range 1-12 or JAN-DEC"),
        ("* * * * 8", "day-of-week field '8' is out of range 0-7 or SUN-SAT"),
        ("60 * * * * *", "second field '60' is out of range 0-59"),
        ("* * * FOO *", "month field 'FOO' is not a number or name"),
        ("MON * * * *", "minute field 'MON' is not a number"),
        ("*/0 * * * *", "step of 0"),
        ("*/x * * * *", "step that is not a whole number"),
        ("5-1 * * * *", "range that ends before it starts"),
        ("* * * * FRI-MON", "range that ends before it starts"),
        ("1,,2 * * * *", "empty list item"),
        ("-1 * * * *", "minute field '-1' is not a number"),
        ("* * L/2 * *", "cannot have a step after L"),
        ("0 9 1-15W * *", "day-of-month field '1-15W' needs a single day before W"),
        ("0 9 15W/2 * *", "day-of-month field '15W/2' needs a single day before W"),
        ("0 9 W * *", "day-of-month field 'W' needs a single day before W"),
        ("0 9 32W * *", "day-of-month field '32W' is out of range 1-31"),
        ("0 15W * * *", "hour field '15W' uses W (the weekday nearest a day), which only goes"),
        ("0 9 * * 5W", "day-of-week field '5W' uses W"),
        ("0 9 * * LW", "day-of-week field 'LW' uses W"),
        ("0 9 * 3W *", "month field '3W' uses W"),
        ("0 0 30W 2 *", "never fires: no day-of-month 30 in February"),
        ({"type": "daily", "times": ["09:00"], "weekdays": "1W"}, "uses W"),
        ("* * * * 5#6", "week number 1-5"),
        ("* * * *", "has 4 fields; it needs 5"),
        ("* * * * * * *", "has 7 fields"),
        ("0 0 31 2 *", "never fires"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
        ("0 0 */40 2 MON#5", "never fires within 50 years"),
        ("@reboot", "unknown macro '@reboot'"),
        ("@every", "could not read"),
        ("@every30m", "put the interval after '@every '"),
        ("@every soon", "could not read 'soon' as a duration"),
        ("@every 0s", "longer than zero"),
        ("@every 500ms", "more often than the minimum interval of 1s"),
        ("every -5m", "must not be negative"),
        ("in -5m", "must not be negative"),
        ("in 0s", "is not in the future"),
        ("in five minutes", "could not read 'five minutes' as a duration"),
        ("2020-01-01T00:00:00Z", "is not in the future"),
        ("2026-06-01T12:00:00Z", "is not in the future"),
        ("2026-13-01T00:00:00Z", "could not read '2026-13-01T00:00:00Z' as an ISO-8601 instant"),
        ("tomorrow", "could not read 'tomorrow' as a schedule"),
        ("", "is empty"),
        ("   ", "is empty"),
        (LONG, "1010 characters long; at most 1000"),
        (42, "must be text or an object, got int"),
        (
            {"expression": "0 9 * * *"},
            "needs a 'type' of cron, interval, once, daily, rrule or on_demand",
        ),
        ({"type": "weekly"}, "rrule or on_demand, got 'weekly'"),
        ({"type": "cron", "kind": "once"}, "'type' ('cron') and 'kind' ('once') disagree"),
        ({"type": "cron"}, "needs an 'expression'"),
        ({"type": "cron", "expression": "0 9 * * *", "foo": 1}, "unknown key 'foo'"),
        (
            {"type": "cron", "expression": "0 9 * * *", "foo": 1, "bar": 2},
            "unknown keys 'bar', 'foo' in a cron schedule",
        ),
        ({"type": "interval"}, "needs 'every'"),
        ({"type": "interval", "every": "30m", "at": "x"}, "unknown key 'at'"),
        ({"type": "interval", "every": "banana"}, "could not read 'banana' as a duration"),
        ({"type": "interval", "every": "1m", "start": "soon"}, "as an ISO-8601 instant"),
        ({"type": "once"}, "exactly one of 'at'"),
        ({"type": "once", "at": "2026-12-01T00:00:00Z", "in": "5m"}, "exactly one of 'at'"),
        ({"type": "once", "in": "0s"}, "'in' must be longer than zero"),
        ({"type": "once", "at": 12}, "an instant must be ISO-8601 text, got int"),
        ({"type": "daily"}, "needs 'times'"),
        ({"type": "daily", "times": []}, "needs 'times'"),
        ({"type": "daily", "times": ["25:00"]}, "daily time '25:00' is not a local time"),
        ({"type": "daily", "times": ["9am"]}, "daily time '9am' is not a local time"),
        ({"type": "daily", "times": ["09:00"], "weekdays": ["XYZ"]}, "'XYZ' is not a day name"),
        ({"type": "daily", "times": ["09:00"], "weekdays": []}, "non-empty list of day names"),
        ({"type": "daily", "times": ["09:00"], "weekdays": "FRI#2"}, "cannot use L or #"),
        ({"type": "daily", "times": ["09:00"], "expression": "x"}, "unknown key 'expression'"),
        ({"type": "cron", "expression": "x" * 1001}, "1001 characters long"),
        ({"type": "cron", "expression": "0 9 * * *", "timezone": 5}, "timezone must be text"),
    ],
)
def test_invalid_schedules_say_what_was_wrong_and_show_an_example(value: Any, message: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        parse_schedule(value, now=NOW)
    assert message in str(caught.value)
    assert "Example" in str(caught.value)
    assert caught.value.example


@pytest.mark.parametrize(
    ("value", "min_interval", "message"),
    [
        ("@every 30s", timedelta(minutes=1), "can fire every 30s, more often than the minimum"),
        ("every 59s", timedelta(minutes=1), "can fire every 59s"),
        ({"type": "interval", "every": "10s"}, timedelta(minutes=1), "can fire every 10s"),
        ("* * * * *", timedelta(minutes=5), "can fire every 1m"),
        ("*/10 * * * * *", timedelta(minutes=1), "can fire every 10s"),
        ("0 0,23 * * *", timedelta(hours=2), "can fire every 1h"),
        ("0 9,9-10 * * *", timedelta(hours=2), "can fire every 1h"),
        ({"type": "daily", "times": ["09:00", "09:30"]}, timedelta(hours=1), "every 30m"),
        ({"type": "daily", "times": ["23:50", "00:10"]}, timedelta(hours=1), "every 20m"),
    ],
)
def test_schedules_firing_more_often_than_min_interval_are_refused(
    value: Any, min_interval: timedelta, message: str
) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        parse_schedule(value, now=NOW, min_interval=min_interval)
    assert message in str(caught.value)
    assert "Example" in str(caught.value)


def test_schedules_at_the_minimum_interval_are_accepted() -> None:
    parse_schedule("@every 1m", now=NOW, min_interval=timedelta(minutes=1))
    parse_schedule("* * * * *", now=NOW, min_interval=timedelta(minutes=1))
    parse_schedule("0 9,17 * * *", now=NOW, min_interval=timedelta(hours=8))


@pytest.mark.parametrize(
    "value",
    [
        "0 9 * * *",
        {"type": "cron", "expression": "0 9 * * *", "timezone": "Mars/Olympus_Mons"},
        {"type": "cron", "expression": "0 9 * * *", "timezone": ""},
        {"type": "daily", "times": ["09:00"], "timezone": "../../etc/passwd"},
    ],
)
def test_unknown_time_zones_are_refused_with_an_example(value: Any) -> None:
    zone = "Mars/Olympus_Mons" if isinstance(value, str) else None
    with pytest.raises(UnknownTimeZone) as caught:
        parse_schedule(value, now=NOW, timezone=zone)
    assert "unknown time zone" in str(caught.value)
    assert "Example" in str(caught.value)


@pytest.mark.parametrize(
    ("jitter", "message"),
    [("-5m", "must not be negative"), (-1, "must not be negative"), ("soon", "could not read")],
)
def test_bad_jitter_is_refused_with_an_example(jitter: Any, message: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        parse_schedule("@hourly", now=NOW, jitter=jitter)
    assert message in str(caught.value)
    assert "jitter" in str(caught.value)
    assert "Example" in str(caught.value)


def test_negative_jitter_on_a_constructed_schedule_is_refused() -> None:
    with pytest.raises(InvalidSchedule, match="must not be negative"):
        CronSchedule("0 9 * * *", jitter=timedelta(seconds=-1))


def test_a_ten_megabyte_string_is_refused_by_its_length_before_any_parsing() -> None:
    huge = "* " * 5_000_000
    with pytest.raises(InvalidSchedule) as caught:
        parse_schedule(huge, now=NOW)
    assert "10000000 characters long; at most 1000" in str(caught.value)


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(InvalidInput, match="now must be an aware datetime"):
        parse_schedule("0 9 * * *", now=datetime(2026, 6, 1))


# --- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("250ms", timedelta(milliseconds=250)),
        ("1.5s", timedelta(seconds=1.5)),
        ("90", timedelta(seconds=90)),
        ("0.25", timedelta(seconds=0.25)),
        ("10 minutes", timedelta(minutes=10)),
        ("1 hour", timedelta(hours=1)),
        ("2H", timedelta(hours=2)),
        ("0s", timedelta(0)),
        ("15us", timedelta(microseconds=15)),
        (90, timedelta(seconds=90)),
        (1.5, timedelta(seconds=1.5)),
        (0, timedelta(0)),
        (timedelta(minutes=3), timedelta(minutes=3)),
    ],
)
def test_parse_duration_reads_compact_and_plain_forms(value: Any, expected: timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "is empty"),
        ("  ", "is empty"),
        ("-5m", "must not be negative"),
        (-1, "must not be negative"),
        (timedelta(seconds=-1), "must not be negative"),
        ("5 parsecs", "could not read '5 parsecs' as a duration"),
        ("1h30", "could not read"),
        ("abc", "could not read"),
        ("1e5s", "could not read"),
        (float("nan"), "finite number"),
        (float("inf"), "finite number"),
        (True, "must be a duration, got bool"),
        (None, "must be a duration, got NoneType"),
        ("1" * 101, "at most 100"),
        ("9999999d", "longer than 100 years"),
    ],
)
def test_parse_duration_refuses_garbage_with_an_example(value: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_duration(value, field="timeout")
    assert message in str(caught.value)
    assert str(caught.value).startswith("timeout: ")
    assert "Example" in str(caught.value)
    assert caught.value.field == "timeout"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(seconds=45), "45s"),
        (timedelta(milliseconds=250), "250ms"),
        (timedelta(days=1, seconds=1), "1d1s"),
        (timedelta(seconds=1.5), "1s500ms"),
        (timedelta(0), "0s"),
        (timedelta(microseconds=7), "7us"),
        (timedelta(seconds=-90), "-1m30s"),
    ],
)
def test_format_duration_writes_what_parse_duration_reads(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    if value >= timedelta(0):
        assert parse_duration(text) == value


# --- specs -------------------------------------------------------------------------------------

ROUND_TRIP = [
    "0 9 * * MON-FRI",
    "30 15 10 * * *",
    "@daily",
    "@every 90s",
    "in 5m",
    "2026-12-01T09:00:00+01:00",
    {"type": "daily", "times": ["09:00", "17:30:15"], "weekdays": ["MON", "FRI"]},
    {"type": "daily", "times": ["09:00"]},
    {"type": "interval", "every": "250ms", "start": "2026-06-01T12:00:00.5+02:00"},
]


@pytest.mark.parametrize("value", ROUND_TRIP)
@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_to_spec_and_schedule_from_spec_round_trip(value: Any, zone: str) -> None:
    schedule = parse_schedule(
        value, now=NOW, timezone=zone, jitter="10s", min_interval=timedelta(0)
    )
    spec = schedule.to_spec()
    assert json.loads(json.dumps(spec)) == spec
    rebuilt = schedule_from_spec(spec)
    assert rebuilt == schedule
    assert type(rebuilt) is type(schedule)
    assert rebuilt.to_spec() == spec
    assert fires(rebuilt, NOW, 3) == fires(schedule, NOW, 3)


def test_spec_shapes_are_plain_and_readable() -> None:
    cron = parse_schedule("0 9 * * MON-FRI", now=NOW, timezone="Europe/Paris", jitter="1m")
    assert cron.to_spec() == {
        "type": "cron",
        "expression": "0 9 * * MON-FRI",
        "timezone": "Europe/Paris",
        "jitter": "1m",
    }
    interval = parse_schedule("@every 1h30m", now=NOW)
    assert interval.to_spec() == {
        "type": "interval",
        "every": "1h30m",
        "start": "2026-06-01T12:00:00+00:00",
        "timezone": "UTC",
    }
    once = parse_schedule("in 5m", now=NOW)
    assert once.to_spec() == {"type": "once", "at": "2026-06-01T12:05:00+00:00", "timezone": "UTC"}
    daily = parse_schedule({"type": "daily", "times": ["9:00"], "weekdays": "MON,FRI"}, now=NOW)
    assert daily.to_spec() == {
        "type": "daily",
        "times": ["09:00"],
        "weekdays": ["MON", "FRI"],
        "timezone": "UTC",
    }


def test_a_stored_once_in_the_past_is_rebuilt_without_complaint() -> None:
    spec = {"type": "once", "at": "2020-01-01T00:00:00+00:00", "timezone": "UTC"}
    schedule = schedule_from_spec(spec)
    assert isinstance(schedule, OnceSchedule)
    assert schedule.next_after(NOW) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "once", "in": "5m"}, "relative to the current time"),
        ({"type": "interval", "every": "5m"}, "relative to the current time"),
        ({"type": "cron", "expression": "61 * * * *"}, "minute field '61' is out of range"),
        ({"type": "cron", "expression": "0 0 30 2 *"}, "never fires"),
        ("0 9 * * *", "a stored schedule must be an object"),
    ],
)
def test_schedule_from_spec_refuses_what_it_cannot_rebuild(spec: Any, message: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        schedule_from_spec(spec)
    assert message in str(caught.value)
    assert "Example" in str(caught.value)


# --- descriptions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "zone", "description"),
    [
        (
            "0 9 * * MON-FRI",
            "America/New_York",
            "at 09:00 on Monday through Friday (America/New_York)",
        ),
        ("*/15 * * * *", "UTC", "every 15 minutes (UTC)"),
        ("* * * * *", "UTC", "every minute (UTC)"),
        ("@hourly", "UTC", "every hour (UTC)"),
        ("@daily", "UTC", "at 00:00 every day (UTC)"),
        ("@yearly", "UTC", "at 00:00 on January 1 (UTC)"),
        ("0 0 13 * FRI", "UTC", "at 00:00 on day 13 of the month or on Friday (UTC)"),
        ("0 0 L * *", "UTC", "at 00:00 on the last day of the month (UTC)"),
        ("0 0 * * FRI#2", "UTC", "at 00:00 on the second Friday of the month (UTC)"),
        ("0 9 15W * *", "UTC", "at 09:00 on the weekday nearest day 15 of the month (UTC)"),
        (
            "0 9 1W,15W * *",
            "UTC",
            "at 09:00 on the weekdays nearest days 1 and 15 of the month (UTC)",
        ),
        ("15,45 * * * *", "UTC", "at minutes 15 and 45 of every hour (UTC)"),
        (
            "*/5 9-17 * * 1-5",
            "UTC",
            "every 5 minutes during hours 9 through 17 on Monday through Friday (UTC)",
        ),
        ("30 15 10 * * *", "UTC", "at 10:15:30 every day (UTC)"),
        (
            "0 8,20 1 JAN-MAR *",
            "UTC",
            "at 08:00 and 20:00 on day 1 of the month in January through March (UTC)",
        ),
        ("@every 30m", "UTC", "every 30 minutes"),
        ("@every 1h", "UTC", "every hour"),
        ("@every 1h30m", "UTC", "every 1 hour 30 minutes"),
        ("2026-12-01T09:00:00+01:00", "Europe/Paris", "once at 2026-12-01 09:00 Europe/Paris"),
        (
            {"type": "daily", "times": ["09:00", "17:30"]},
            "UTC",
            "at 09:00 and 17:30 every day (UTC)",
        ),
        (
            {"type": "daily", "times": ["09:00"], "weekdays": ["MON", "FRI"]},
            "Europe/Paris",
            "at 09:00 on Monday and Friday (Europe/Paris)",
        ),
    ],
)
def test_describe_gives_a_short_human_description(value: Any, zone: str, description: str) -> None:
    assert parse_schedule(value, now=NOW, timezone=zone).describe() == description
