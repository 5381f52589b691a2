"""DST policy on the 2026 transition days of four zones, with exact UTC instants.

Transitions (UTC instant: local change):
- America/New_York: 2026-03-08 07:00 (02:00 EST -> 03:00 EDT),
  2026-11-01 06:00 (02:00 EDT -> 01:00 EST)
- Europe/London: 2026-03-29 01:00 (01:00 GMT -> 02:00 BST),
  2026-10-25 01:00 (02:00 BST -> 01:00 GMT)
- Australia/Lord_Howe (30-minute shift): 2026-04-04 15:00 (02:00 +11 -> 01:30 +10:30),
  2026-10-03 15:30 (02:00 +10:30 -> 02:30 +11)
- Pacific/Chatham (at 02:45/03:45 local): 2026-04-04 14:00 (03:45 +13:45 -> 02:45 +12:45),
  2026-09-26 14:00 (02:45 +12:45 -> 03:45 +13:45)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from wakecall.schedules import CronSchedule, DailySchedule, RruleSchedule, parse_schedule

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires_between(schedule: Any, start: datetime, end: datetime) -> list[datetime]:
    found = []
    cursor = schedule.next_after(start)
    while cursor is not None and cursor <= end:
        found.append(cursor)
        cursor = schedule.next_after(cursor)
    return found


# (zone, local time, first day, expected UTC fires on that day and the next)
FIXED_TIME_CASES = [
    # spring forward: 02:30 does not exist, fires at the first valid instant (03:00 EDT)
    (
        "America/New_York",
        "02:30",
        utc(2026, 3, 7, 12),
        [utc(2026, 3, 8, 7), utc(2026, 3, 9, 6, 30)],
    ),
    ("America/New_York", "02:00", utc(2026, 3, 7, 12), [utc(2026, 3, 8, 7), utc(2026, 3, 9, 6)]),
    ("America/New_York", "03:00", utc(2026, 3, 7, 12), [utc(2026, 3, 8, 7), utc(2026, 3, 9, 7)]),
    # fall back: 01:30 happens twice, fires once (01:30 EDT)
    (
        "America/New_York",
        "01:30",
        utc(2026, 10, 31, 12),
        [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)],
    ),
    (
        "America/New_York",
        "02:00",
        utc(2026, 10, 31, 12),
        [utc(2026, 11, 1, 7), utc(2026, 11, 2, 7)],
    ),
    (
        "Europe/London",
        "01:30",
        utc(2026, 3, 28, 12),
        [utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30)],
    ),
    (
        "Europe/London",
        "01:30",
        utc(2026, 10, 24, 12),
        [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
    ),
    ("Europe/London", "02:00", utc(2026, 10, 24, 12), [utc(2026, 10, 25, 2), utc(2026, 10, 26, 2)]),
    # Lord Howe: 02:00-02:29 is skipped in October, 01:30-01:59 repeated in April
    (
        "Australia/Lord_Howe",
        "02:15",
        utc(2026, 10, 3),
        [utc(2026, 10, 3, 15, 30), utc(2026, 10, 4, 15, 15)],
    ),
    (
        "Australia/Lord_Howe",
        "02:30",
        utc(2026, 10, 3),
        [utc(2026, 10, 3, 15, 30), utc(2026, 10, 4, 15, 30)],
    ),
    (
        "Australia/Lord_Howe",
        "01:45",
        utc(2026, 4, 4),
        [utc(2026, 4, 4, 14, 45), utc(2026, 4, 5, 15, 15)],
    ),
    (
        "Australia/Lord_Howe",
        "01:29",
        utc(2026, 4, 4),
        [utc(2026, 4, 4, 14, 29), utc(2026, 4, 5, 14, 59)],
    ),
    # Chatham: 02:45-03:44 is skipped in September, repeated in April
    (
        "Pacific/Chatham",
        "03:00",
        utc(2026, 9, 26),
        [utc(2026, 9, 26, 14), utc(2026, 9, 27, 13, 15)],
    ),
    (
        "Pacific/Chatham",
        "02:30",
        utc(2026, 9, 26),
        [utc(2026, 9, 26, 13, 45), utc(2026, 9, 27, 12, 45)],
    ),
    (
        "Pacific/Chatham",
        "03:00",
        utc(2026, 4, 4),
        [utc(2026, 4, 4, 13, 15), utc(2026, 4, 5, 14, 15)],
    ),
    ("Pacific/Chatham", "02:45", utc(2026, 4, 4), [utc(2026, 4, 4, 13), utc(2026, 4, 5, 14)]),
]


def _cron_at(local: str, zone: str) -> CronSchedule:
    hour, minute = local.split(":")
    schedule = parse_schedule(f"{int(minute)} {int(hour)} * * *", now=NOW, timezone=zone)
    assert isinstance(schedule, CronSchedule)
    assert schedule.fixed_time
    return schedule


@pytest.mark.parametrize(("zone", "local", "start", "expected"), FIXED_TIME_CASES)
def test_fixed_time_cron_fires_once_on_fall_back_and_after_the_gap_on_spring_forward(
    zone: str, local: str, start: datetime, expected: list[datetime]
) -> None:
    schedule = _cron_at(local, zone)
    assert fires_between(schedule, start, start + timedelta(days=2)) == expected


@pytest.mark.parametrize(("zone", "local", "start", "expected"), FIXED_TIME_CASES)
def test_daily_times_follow_the_same_dst_policy_as_fixed_time_cron(
    zone: str, local: str, start: datetime, expected: list[datetime]
) -> None:
    schedule = parse_schedule({"type": "daily", "times": [local]}, now=NOW, timezone=zone)
    assert isinstance(schedule, DailySchedule)
    assert fires_between(schedule, start, start + timedelta(days=2)) == expected


def _rule_at(local: str, zone: str, freq: str = "DAILY") -> RruleSchedule:
    hour, minute = local.split(":")
    text = f"RRULE:FREQ={freq};BYHOUR={int(hour)};BYMINUTE={int(minute)}"
    schedule = parse_schedule(text, now=NOW, timezone=zone)
    assert isinstance(schedule, RruleSchedule)
    assert schedule.fixed_time
    return schedule


@pytest.mark.parametrize(("zone", "local", "start", "expected"), FIXED_TIME_CASES)
def test_daily_rules_follow_the_same_dst_policy_as_fixed_time_cron(
    zone: str, local: str, start: datetime, expected: list[datetime]
) -> None:
    schedule = _rule_at(local, zone)
    assert fires_between(schedule, start, start + timedelta(days=2)) == expected
    for fire in expected:
        assert schedule.latest_at_or_before(fire) == fire
        assert schedule.latest_at_or_before(fire + timedelta(minutes=59)) == fire


@pytest.mark.parametrize(("zone", "local", "start", "expected"), FIXED_TIME_CASES)
def test_weekly_monthly_and_yearly_rules_keep_their_local_times_too(
    zone: str, local: str, start: datetime, expected: list[datetime]
) -> None:
    # each case's first fire is on its transition's local day (no gap here crosses midnight)
    day = expected[0].astimezone(ZoneInfo(zone))
    hour, minute = local.split(":")
    times = f"BYHOUR={int(hour)};BYMINUTE={int(minute)}"
    weekday = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")[day.weekday()]
    for text in (
        f"RRULE:FREQ=WEEKLY;BYDAY={weekday};{times}",
        f"RRULE:FREQ=MONTHLY;BYMONTHDAY={day.day};{times}",
        f"RRULE:FREQ=YEARLY;BYMONTH={day.month};BYMONTHDAY={day.day};{times}",
    ):
        schedule = parse_schedule(text, now=NOW, timezone=zone)
        assert fires_between(schedule, start, start + timedelta(days=2)) == expected[:1], text


@pytest.mark.parametrize(("zone", "local", "start", "expected"), FIXED_TIME_CASES)
def test_latest_at_or_before_finds_the_same_dst_fires_backwards(
    zone: str, local: str, start: datetime, expected: list[datetime]
) -> None:
    for schedule in (
        _cron_at(local, zone),
        parse_schedule({"type": "daily", "times": [local]}, now=NOW, timezone=zone),
    ):
        for fire in expected:
            assert schedule.latest_at_or_before(fire) == fire
            assert schedule.latest_at_or_before(fire + timedelta(minutes=59)) == fire


def test_a_fixed_time_job_started_during_the_repeated_hour_does_not_fire_again() -> None:
    schedule = _cron_at("01:30", "America/New_York")
    # 01:15 EST, the second pass of 01:xx: 01:30 EDT already happened an hour ago
    assert schedule.next_after(utc(2026, 11, 1, 6, 15)) == utc(2026, 11, 2, 6, 30)
    assert schedule.latest_at_or_before(utc(2026, 11, 1, 6, 45)) == utc(2026, 11, 1, 5, 30)
    # 01:15 EDT, the first pass: 01:30 EDT is still to come
    assert schedule.next_after(utc(2026, 11, 1, 5, 15)) == utc(2026, 11, 1, 5, 30)


def test_several_times_inside_one_gap_collapse_into_one_fire() -> None:
    daily = parse_schedule(
        {"type": "daily", "times": ["02:00", "02:30", "02:59", "03:00", "03:30"]},
        now=NOW,
        timezone="America/New_York",
    )
    cron = parse_schedule("0,30 2,3 * * *", now=NOW, timezone="America/New_York")
    for schedule in (daily, cron):
        fires = fires_between(schedule, utc(2026, 3, 8, 5), utc(2026, 3, 8, 9))
        assert fires[:2] == [utc(2026, 3, 8, 7), utc(2026, 3, 8, 7, 30)]


@pytest.mark.parametrize(
    ("expression", "fixed"),
    [
        ("30 2 * * *", True),
        ("0 9 * * MON-FRI", True),
        ("0,30 1-3 * * *", True),
        ("@daily", True),
        ("@weekly", True),
        ("15 10 2 * * *", True),
        ("*/15 2 * * *", False),  # a wildcard minute: Debian cron and cronsim follow real time
        ("* 2 * * *", False),
        ("0 */2 * * *", False),
        ("0 * * * *", False),
        ("@hourly", False),
        ("* 30 2 * * *", False),  # a wildcard second
    ],
)
def test_a_job_is_fixed_time_unless_its_hour_minute_or_second_starts_with_a_wildcard(
    expression: str, fixed: bool
) -> None:
    schedule = CronSchedule(expression, "America/New_York")
    assert schedule.fixed_time is fixed


# (expression, zone, window start, window end, expected UTC fires): jobs with '*' in the hour or
# minute follow real time: both passes of a repeated hour fire, a skipped hour does not
REAL_TIME_CASES = [
    (
        "*/30 * * * *",
        "America/New_York",
        utc(2026, 11, 1, 4, 59),
        utc(2026, 11, 1, 7),
        [
            utc(2026, 11, 1, 5),
            utc(2026, 11, 1, 5, 30),
            utc(2026, 11, 1, 6),
            utc(2026, 11, 1, 6, 30),
            utc(2026, 11, 1, 7),
        ],
    ),
    (
        "*/20 1 * * *",
        "America/New_York",
        utc(2026, 11, 1, 4),
        utc(2026, 11, 2, 4),
        [
            utc(2026, 11, 1, 5),
            utc(2026, 11, 1, 5, 20),
            utc(2026, 11, 1, 5, 40),
            utc(2026, 11, 1, 6),
            utc(2026, 11, 1, 6, 20),
            utc(2026, 11, 1, 6, 40),
        ],
    ),
    ("*/20 2 * * *", "America/New_York", utc(2026, 3, 8, 5), utc(2026, 3, 8, 12), []),
    (
        "0 * * * *",
        "America/New_York",
        utc(2026, 3, 8, 5, 30),
        utc(2026, 3, 8, 8),
        [utc(2026, 3, 8, 6), utc(2026, 3, 8, 7), utc(2026, 3, 8, 8)],
    ),
    (
        "*/30 1 * * *",
        "Europe/London",
        utc(2026, 10, 24, 23),
        utc(2026, 10, 25, 3),
        [
            utc(2026, 10, 25, 0),
            utc(2026, 10, 25, 0, 30),
            utc(2026, 10, 25, 1),
            utc(2026, 10, 25, 1, 30),
        ],
    ),
    ("*/30 1 * * *", "Europe/London", utc(2026, 3, 28, 23), utc(2026, 3, 29, 3), []),
    (
        "*/15 1 * * *",
        "Australia/Lord_Howe",
        utc(2026, 4, 4, 13),
        utc(2026, 4, 4, 17),
        [
            utc(2026, 4, 4, 14),
            utc(2026, 4, 4, 14, 15),
            utc(2026, 4, 4, 14, 30),
            utc(2026, 4, 4, 14, 45),
            utc(2026, 4, 4, 15),  # 01:30 +10:30, second pass
            utc(2026, 4, 4, 15, 15),  # 01:45 +10:30
        ],
    ),
    (
        "*/10 2 * * *",
        "Australia/Lord_Howe",
        utc(2026, 10, 3, 14),
        utc(2026, 10, 3, 17),
        [utc(2026, 10, 3, 15, 30), utc(2026, 10, 3, 15, 40), utc(2026, 10, 3, 15, 50)],
    ),
    (
        "*/15 2 * * *",
        "Pacific/Chatham",
        utc(2026, 4, 4, 12),
        utc(2026, 4, 4, 16),
        [
            utc(2026, 4, 4, 12, 15),
            utc(2026, 4, 4, 12, 30),
            utc(2026, 4, 4, 12, 45),
            utc(2026, 4, 4, 13),
            utc(2026, 4, 4, 14),  # 02:45 +12:45, second pass
        ],
    ),
    (
        "*/15 3 * * *",
        "Pacific/Chatham",
        utc(2026, 9, 26, 12),
        utc(2026, 9, 26, 16),
        [utc(2026, 9, 26, 14)],
    ),
]


# the rules that fire as the cron expressions of REAL_TIME_CASES (no DTSTART: they start at
# NOW, on a whole hour of each zone's clock, so the minutes count from :00)
RULES_AS_CRON = {
    "*/30 * * * *": "RRULE:FREQ=HOURLY;BYMINUTE=0,30",
    "*/20 1 * * *": "RRULE:FREQ=MINUTELY;INTERVAL=20;BYHOUR=1",
    "*/20 2 * * *": "RRULE:FREQ=HOURLY;BYHOUR=2;BYMINUTE=0,20,40",
    "0 * * * *": "RRULE:FREQ=HOURLY",
    "*/30 1 * * *": "RRULE:FREQ=MINUTELY;INTERVAL=30;BYHOUR=1",
    "*/15 1 * * *": "RRULE:FREQ=MINUTELY;INTERVAL=15;BYHOUR=1",
    "*/10 2 * * *": "RRULE:FREQ=SECONDLY;INTERVAL=600;BYHOUR=2",
    "*/15 2 * * *": "RRULE:FREQ=MINUTELY;INTERVAL=15;BYHOUR=2",
    "*/15 3 * * *": "RRULE:FREQ=HOURLY;BYHOUR=3;BYMINUTE=0,15,30,45",
}


@pytest.mark.parametrize(("expression", "zone", "start", "end", "expected"), REAL_TIME_CASES)
def test_hourly_and_finer_rules_follow_real_time_as_wildcard_cron_does(
    expression: str, zone: str, start: datetime, end: datetime, expected: list[datetime]
) -> None:
    schedule = parse_schedule(RULES_AS_CRON[expression], now=NOW, timezone=zone)
    assert isinstance(schedule, RruleSchedule)
    assert not schedule.fixed_time
    assert fires_between(schedule, start, end) == expected
    for fire in expected:
        assert schedule.latest_at_or_before(fire) == fire
        assert schedule.latest_at_or_before(fire + timedelta(minutes=1)) == fire


@pytest.mark.parametrize(("expression", "zone", "start", "end", "expected"), REAL_TIME_CASES)
def test_wildcard_hour_or_minute_jobs_follow_real_time(
    expression: str, zone: str, start: datetime, end: datetime, expected: list[datetime]
) -> None:
    schedule = parse_schedule(expression, now=NOW, timezone=zone)
    assert isinstance(schedule, CronSchedule)
    assert not schedule.fixed_time
    assert fires_between(schedule, start, end) == expected
    for fire in expected:
        assert schedule.latest_at_or_before(fire) == fire
        assert schedule.latest_at_or_before(fire + timedelta(minutes=1)) == fire


TRANSITIONS = {
    "America/New_York": [utc(2026, 3, 8, 7), utc(2026, 11, 1, 6)],
    "Europe/London": [utc(2026, 3, 29, 1), utc(2026, 10, 25, 1)],
    "Australia/Lord_Howe": [utc(2026, 4, 4, 15), utc(2026, 10, 3, 15, 30)],
    "Pacific/Chatham": [utc(2026, 4, 4, 14), utc(2026, 9, 26, 14)],
}


@pytest.mark.parametrize("zone", sorted(TRANSITIONS))
@pytest.mark.parametrize(
    "value",
    [
        "30 2 * * *",
        "0 1,2,3 * * *",
        "*/7 * * * *",
        "15,45 1-3 * * *",
        "10 2,3 * * *",
        "45 2 * * SUN",
        "*/20 1-3 * * *",
        "0 */15 * * * *",
        "59 59 1,2,3 * * *",
        {"type": "daily", "times": ["01:30", "02:00", "02:30", "02:45", "03:00", "03:50"]},
        "RRULE:FREQ=DAILY;BYHOUR=1,2,3;BYMINUTE=0,30,45",
        "RRULE:FREQ=WEEKLY;BYDAY=SA,SU;BYHOUR=2;BYMINUTE=15,45",
        "RRULE:FREQ=HOURLY;BYMINUTE=15,45",
        "RRULE:FREQ=MINUTELY;INTERVAL=7",
        "RRULE:FREQ=MINUTELY;INTERVAL=20;BYHOUR=1,2,3",
    ],
)
def test_fires_are_strictly_increasing_across_each_transition(zone: str, value: Any) -> None:
    schedule = parse_schedule(value, now=NOW, timezone=zone)
    for transition in TRANSITIONS[zone]:
        fires = fires_between(
            schedule, transition - timedelta(days=2), transition + timedelta(days=2)
        )
        assert fires
        assert all(a < b for a, b in pairwise(fires))
        # walking backwards with latest_at_or_before visits the same fires
        backwards = []
        cursor = schedule.latest_at_or_before(fires[-1])
        while cursor is not None and cursor >= fires[0]:
            backwards.append(cursor)
            cursor = schedule.latest_at_or_before(cursor - timedelta(seconds=1))
        assert backwards[::-1] == fires
