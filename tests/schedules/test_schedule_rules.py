"""RFC 5545 rules: every form they are read in, the fires they make, the refusals, the stored
form, the words that describe them, and a task made from one through the service."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from wakecall.actions import Executor, WakeupExecutor
from wakecall.engine import Engine, EngineConfig
from wakecall.errors import InvalidSchedule, UnknownTimeZone
from wakecall.models import NoopAction, TaskSpec
from wakecall.schedules import (
    RruleSchedule,
    parse_schedule,
    preview,
    schedule_from_spec,
)
from wakecall.store.sqlite import SQLiteStore
from wakecall.testing import FakeClock, ScriptedExecutor, run_until_idle, service_for, step_to

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)  # a Monday; 14:00 in Paris


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires(schedule: Any, after: datetime = NOW, count: int = 5) -> list[datetime]:
    found = []
    cursor = after
    for _ in range(count):
        cursor = schedule.next_after(cursor)
        if cursor is None:
            break
        found.append(cursor)
    return found


def rule(value: Any, zone: str | None = None, now: datetime = NOW, **kw: Any) -> RruleSchedule:
    schedule = parse_schedule(value, now=now, timezone=zone, **kw)
    assert isinstance(schedule, RruleSchedule)
    return schedule


FRIDAYS_AT_NINE = [utc(2026, 6, 5, 9), utc(2026, 6, 12, 9), utc(2026, 6, 19, 9)]


@pytest.mark.parametrize(
    "value",
    [
        "RRULE:FREQ=WEEKLY;BYDAY=FR;BYHOUR=9;BYMINUTE=0",  # Codex automations write this
        "FREQ=WEEKLY;BYDAY=FR;BYHOUR=9;BYMINUTE=0",
        "rrule:freq=weekly;byday=fr;byhour=9",
        "  RRULE:FREQ=WEEKLY;BYDAY=FR;BYHOUR=9;BYMINUTE=0;\n",
        "RRULE: FREQ=WEEKLY; BYDAY = FR; BYHOUR=9",
        {"type": "rrule", "rule": "FREQ=WEEKLY;BYDAY=FR;BYHOUR=9;BYMINUTE=0"},
        "DTSTART:20260601T090000\nRRULE:FREQ=WEEKLY;BYDAY=FR",
        "DTSTART:20260601T090000 RRULE:FREQ=WEEKLY;BYDAY=FR",
        "DTSTART:20260601T090000\r\nRRULE:FREQ=WEEKLY;\r\n BYDAY=FR",  # a folded line
        "DTSTART;TZID=UTC:20260601T090000\nRRULE:FREQ=WEEKLY;BYDAY=FR",
        "DTSTART;VALUE=DATE-TIME:20260601T090000Z\nRRULE:FREQ=WEEKLY;BYDAY=FR",
        "DTSTART:2026-06-01T09:00:00\nRRULE:FREQ=WEEKLY;BYDAY=FR",
        {"type": "rrule", "rule": "RRULE:FREQ=WEEKLY;BYDAY=FR", "start": "2026-06-01T09:00:00"},
        {"type": "rrule", "rule": "FREQ=WEEKLY;BYDAY=FR", "start": "20260601T090000"},
        {"type": "rrule", "rule": "FREQ=WEEKLY;BYDAY=FR", "start": "2026-06-01T11:00:00+02:00"},
        {"type": "rrule", "rule": "DTSTART:20260601T090000\nRRULE:FREQ=WEEKLY;BYDAY=FR"},
    ],
)
def test_rules_are_read_as_calendar_tools_and_codex_automations_write_them(value: Any) -> None:
    assert fires(rule(value), count=3) == FRIDAYS_AT_NINE


def test_every_other_week_on_tuesday_and_thursday() -> None:
    text = (
        "DTSTART;TZID=Europe/Paris:20260602T090000\n"
        "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;BYHOUR=9;BYMINUTE=0"
    )
    schedule = rule(text)
    assert schedule.timezone == "Europe/Paris"  # the DTSTART's zone, none being given
    assert fires(schedule, count=6) == [
        utc(2026, 6, 2, 7),
        utc(2026, 6, 4, 7),
        utc(2026, 6, 16, 7),
        utc(2026, 6, 18, 7),
        utc(2026, 6, 30, 7),
        utc(2026, 7, 2, 7),
    ]


def test_the_second_business_day_of_every_month() -> None:
    text = "RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=2;BYHOUR=9;BYMINUTE=0"
    schedule = rule(text, "Europe/Paris")
    assert fires(schedule, count=6) == [
        utc(2026, 6, 2, 7),  # Mon 1st, Tue 2nd
        utc(2026, 7, 2, 7),  # Wed 1st, Thu 2nd
        utc(2026, 8, 4, 7),  # Sat 1st: Mon 3rd, Tue 4th
        utc(2026, 9, 2, 7),
        utc(2026, 10, 2, 7),
        utc(2026, 11, 3, 8),  # Sun 1st: Mon 2nd, Tue 3rd; 09:00 CET
    ]
    assert schedule.describe() == "on the 2nd weekday of every month at 09:00 (Europe/Paris)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # COUNT counts from DTSTART, the excluded occurrence included (RFC 5545)
        (
            "DTSTART;TZID=Europe/Paris:20260601T170000\nRRULE:FREQ=DAILY;COUNT=4\n"
            "EXDATE;TZID=Europe/Paris:20260602T170000",
            [utc(2026, 6, 1, 15), utc(2026, 6, 3, 15), utc(2026, 6, 4, 15)],
        ),
        (
            "DTSTART;TZID=Europe/Paris:20260601T170000\nRRULE:FREQ=DAILY;COUNT=3",
            [utc(2026, 6, 1, 15), utc(2026, 6, 2, 15), utc(2026, 6, 3, 15)],
        ),
        # UNTIL is inclusive; a Z value is an instant, a date runs through that day
        (
            "RRULE:FREQ=DAILY;BYHOUR=9;BYMINUTE=0;UNTIL=20260604T070000Z",
            [utc(2026, 6, 2, 7), utc(2026, 6, 3, 7), utc(2026, 6, 4, 7)],
        ),
        (
            "RRULE:FREQ=DAILY;BYHOUR=9;BYMINUTE=0;UNTIL=20260604",
            [utc(2026, 6, 2, 7), utc(2026, 6, 3, 7), utc(2026, 6, 4, 7)],
        ),
        # EXDATE as an instant, as a date (the whole day), several on one line and on two
        (
            "RRULE:FREQ=DAILY;BYHOUR=9;BYMINUTE=0;COUNT=4\nEXDATE:20260603T070000Z",
            [utc(2026, 6, 2, 7), utc(2026, 6, 4, 7), utc(2026, 6, 5, 7)],
        ),
        (
            "RRULE:FREQ=DAILY;BYHOUR=9,18;BYMINUTE=0;COUNT=6\nEXDATE;VALUE=DATE:20260603",
            [utc(2026, 6, 1, 16), utc(2026, 6, 2, 7), utc(2026, 6, 2, 16), utc(2026, 6, 4, 7)],
        ),
        (
            "DTSTART;TZID=Europe/Paris:20260602T090000\nRRULE:FREQ=DAILY;COUNT=5\n"
            "EXDATE;TZID=Europe/Paris:20260603T090000,20260604T090000\n"
            "EXDATE;TZID=America/New_York:20260605T030000",
            [utc(2026, 6, 2, 7), utc(2026, 6, 6, 7)],
        ),
    ],
)
def test_count_until_and_exdate_end_and_thin_a_rule(text: str, expected: list[datetime]) -> None:
    assert fires(rule(text, "Europe/Paris"), count=10) == expected


def test_a_rule_without_dtstart_starts_now_at_the_times_of_day_it_names() -> None:
    now = datetime(2026, 6, 1, 10, 37, 12, tzinfo=UTC)
    weekly = rule("RRULE:FREQ=WEEKLY;BYDAY=FR;BYHOUR=9", "Europe/Paris", now=now)
    assert weekly.to_spec() == {
        "type": "rrule",
        "rule": "FREQ=WEEKLY;BYDAY=FR;BYHOUR=9;BYMINUTE=0;BYSECOND=0",
        "start": "2026-06-01T12:37:12",
        "timezone": "Europe/Paris",
    }
    assert fires(weekly, now, 2) == [utc(2026, 6, 5, 7), utc(2026, 6, 12, 7)]
    # periods count from now: every 2 hours from 12:00 Paris, on the hour
    hourly = rule("FREQ=HOURLY;INTERVAL=2", "Europe/Paris", now=now)
    assert fires(hourly, now, 3) == [utc(2026, 6, 1, 12), utc(2026, 6, 1, 14), utc(2026, 6, 1, 16)]
    # COUNT counts from now too
    counted = rule("FREQ=DAILY;BYHOUR=9;COUNT=2", "Europe/Paris", now=now)
    assert fires(counted, now) == [utc(2026, 6, 2, 7), utc(2026, 6, 3, 7)]


def test_a_tzid_wins_for_its_own_value_and_names_the_zone_when_none_is_given() -> None:
    text = "DTSTART;TZID=America/New_York:20260601T090000\nRRULE:FREQ=DAILY"
    new_york = rule(text)
    assert new_york.timezone == "America/New_York"
    assert fires(new_york, count=2) == [utc(2026, 6, 1, 13), utc(2026, 6, 2, 13)]
    # in a task whose zone is Paris, 09:00 in New York is 15:00 on Paris's clock
    paris = rule(text, "Europe/Paris")
    assert paris.start == datetime(2026, 6, 1, 15, 0)
    assert fires(paris, count=2) == [utc(2026, 6, 1, 13), utc(2026, 6, 2, 13)]
    mapping = {"type": "rrule", "rule": text, "timezone": "Asia/Tokyo"}
    assert rule(mapping).timezone == "Asia/Tokyo"


@pytest.mark.parametrize(
    "value",
    [
        "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;BYHOUR=9;BYMINUTE=0",
        "DTSTART;TZID=Europe/Paris:20260601T170000\nRRULE:FREQ=DAILY;COUNT=4\n"
        "EXDATE;TZID=Europe/Paris:20260602T170000\nEXDATE;VALUE=DATE:20260603",
        "RRULE:FREQ=MONTHLY;BYDAY=-1FR,+2MO;BYHOUR=8,20;BYMINUTE=15;BYSECOND=30",
        "RRULE:FREQ=YEARLY;BYWEEKNO=1,-1;BYDAY=MO;WKST=SU;UNTIL=20300101T000000Z",
        "RRULE:FREQ=YEARLY;BYYEARDAY=1,100,-1;BYMONTH=1,4,12",
        "RRULE:FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=1,-1;BYSETPOS=-1",
        "RRULE:FREQ=MINUTELY;INTERVAL=15;BYHOUR=9,10,11;BYDAY=MO,TU,WE,TH,FR",
        "RRULE:FREQ=SECONDLY;INTERVAL=30;BYMONTH=6",
        {"type": "rrule", "rule": "FREQ=DAILY", "start": "2026-06-01T09:00:00"},
        {
            "type": "rrule",
            "rule": "FREQ=DAILY;UNTIL=20261231",
            "start": "2026-06-01",
            "exdates": ["2026-06-02T00:00:00", "2026-06-05"],
            "jitter": "30s",
        },
    ],
)
@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "Australia/Lord_Howe"])
def test_the_stored_form_reads_back_as_the_same_schedule(value: Any, zone: str) -> None:
    schedule = rule(value, zone)
    spec = schedule.to_spec()
    again = schedule_from_spec(json.loads(json.dumps(spec)))
    assert again == schedule
    assert again.to_spec() == spec
    assert fires(again, count=8) == fires(schedule, count=8)
    assert fires(schedule, count=1), "every rule above fires after NOW"


def test_exdates_are_kept_sorted_and_once() -> None:
    schedule = rule(
        {
            "type": "rrule",
            "rule": "FREQ=DAILY;BYHOUR=9",
            "exdates": ["2026-06-05", "2026-06-03T09:00:00", "20260603T090000", "2026-06-04"],
        }
    )
    assert schedule.exdates == (datetime(2026, 6, 3, 9), date(2026, 6, 4), date(2026, 6, 5))
    assert fires(schedule, count=2) == [utc(2026, 6, 2, 9), utc(2026, 6, 6, 9)]


# --- refusals --------------------------------------------------------------------------------

REFUSALS = [
    ("RRULE:FREQ=FORTNIGHTLY", "a rule needs FREQ, one of YEARLY"),
    ("RRULE:BYDAY=MO", "got no FREQ"),
    ("RRULE:FREQ=DAILY;BYEASTER=0", "BYEASTER is not part of RFC 5545"),
    ("RRULE:FREQ=DAILY;BYDAYS=MO", "unknown rule part 'BYDAYS=MO'"),
    ("RRULE:FREQ=DAILY;FREQ=WEEKLY", "rule part FREQ is given twice"),
    ("RRULE:FREQ=DAILY;COUNT=3;UNTIL=20270101", "give COUNT or UNTIL, not both"),
    ("RRULE:FREQ=DAILY;COUNT=0", "COUNT must be a whole number from 1 to 10000"),
    ("RRULE:FREQ=DAILY;INTERVAL=-2", "INTERVAL must be a whole number from 1 to 10000"),
    ("RRULE:FREQ=DAILY;BYHOUR=24", "BYHOUR takes whole numbers 0 to 23, got '24'"),
    ("RRULE:FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY takes whole numbers -31 to -1 or 1 to 31"),
    ("RRULE:FREQ=DAILY;BYDAY=MON", "BYDAY item 'MON' is not a day"),
    ("RRULE:FREQ=WEEKLY;BYDAY=2TU", "BYDAY positions such as 2TU only go with FREQ=MONTHLY"),
    ("RRULE:FREQ=WEEKLY;BYMONTHDAY=1", "BYMONTHDAY cannot go with FREQ=WEEKLY"),
    ("RRULE:FREQ=MONTHLY;BYYEARDAY=1", "BYYEARDAY cannot go with FREQ=MONTHLY"),
    ("RRULE:FREQ=MONTHLY;BYWEEKNO=1", "BYWEEKNO only goes with FREQ=YEARLY"),
    ("RRULE:FREQ=DAILY;BYSETPOS=1", "BYSETPOS picks among the times other BY parts make"),
    ("RRULE:FREQ=DAILY;WKST=XX", "WKST must be one of MO"),
    ("RRULE:FREQ=DAILY;UNTIL=2026", "UNTIL value '2026' is not a date-time"),
    ("DTSTART:20260601\nDTSTART:20260602\nRRULE:FREQ=DAILY", "DTSTART is given twice"),
    ("DTSTART:20260601T090000", "has no RRULE line"),
    ("RRULE:FREQ=DAILY\nRRULE:FREQ=WEEKLY", "a rule text holds one RRULE"),
    ("RRULE:FREQ=DAILY\nRDATE:20260701T090000", "RDATE is not supported"),
    ("BEGIN:VEVENT\nRRULE:FREQ=DAILY", "could not read 'BEGIN' in a rule"),
    ("DTSTART;TZID=Mars/Olympus:20260601T090000\nRRULE:FREQ=DAILY", "unknown time zone"),
    ("DTSTART;X-FOO=1:20260601T090000\nRRULE:FREQ=DAILY", "parameter 'X-FOO=1' is not underst"),
    ("DTSTART:20261301T090000\nRRULE:FREQ=DAILY", "DTSTART value '20261301T090000' is not"),
    ("DTSTART:18000101T090000\nRRULE:FREQ=DAILY", "must fall between the years 1900 and 3000"),
    # rules that can never fire, or no longer do
    ("RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "never fires within 50 years of its start"),
    ("RRULE:FREQ=MINUTELY;BYMONTH=4;BYMONTHDAY=31", "never fires within 50 years of its start"),
    ("RRULE:FREQ=HOURLY;INTERVAL=2;BYHOUR=3", "never fires within 50 years of its start"),
    ("RRULE:FREQ=WEEKLY;BYDAY=MO;BYSETPOS=2", "BYSETPOS=2 picks beyond the 1 time"),
    ("RRULE:FREQ=SECONDLY;BYSECOND=1;BYSETPOS=2", "BYSETPOS=2 picks beyond the 1 time"),
    ("DTSTART:20260101T090000\nRRULE:FREQ=DAILY;COUNT=5", "its last fire (COUNT) is 2026-01-05"),
    ("RRULE:FREQ=DAILY;UNTIL=20260501T000000Z", "UNTIL (2026-05-01 00:00:00) is before its st"),
    ("DTSTART:20200101T090000\nRRULE:FREQ=DAILY;UNTIL=20260501", "the rule has ended: its UNTIL"),
    ("DTSTART:20260101T090000\nRRULE:FREQ=YEARLY;COUNT=60", "COUNT=60 is not reached within 50"),
    (
        "DTSTART:20260601T090000\nRRULE:FREQ=DAILY;COUNT=2\nEXDATE:20260602T090000",
        "never fires within 50 years of now",
    ),
    # too many fires per period, too often for the operator
    (
        "RRULE:FREQ=YEARLY;BYDAY=MO,TU,WE,TH,FR,SA,SU;BYHOUR=0,6,12,18;"
        "BYMINUTE=0,5,10,15,20,25,30,35,40,45,50,55",
        "up to 17568 fires in one year, more than the 10000",
    ),
    ({"type": "rrule"}, "a rrule schedule needs a 'rule'"),
    (
        {"type": "rrule", "rule": "FREQ=DAILY", "start": 5},
        "a rule's start must be a local date-time",
    ),
    ({"type": "rrule", "rule": "FREQ=DAILY", "exdates": "2026-06-02"}, "'exdates' must be a list"),
    (
        {"type": "rrule", "rule": "DTSTART:20260601T090000\nRRULE:FREQ=DAILY", "start": "x"},
        "the rule has a DTSTART and the schedule a 'start'; give one of them",
    ),
    ({"type": "rrule", "rule": "FREQ=DAILY", "every": "1d"}, "unknown key 'every'"),
]


def _example_of(message: str) -> Any:
    """The first example a message shows: a JSON object or a quoted string."""
    example = message.split("Example: ", 1)[1]
    if example.startswith("{"):
        return json.JSONDecoder().raw_decode(example)[0]
    return json.loads(re.match(r'"(?:[^"\\]|\\.)*"', example).group(0))  # type: ignore[union-attr]


@pytest.mark.parametrize(("value", "message"), REFUSALS)
def test_wrong_or_dangerous_rules_are_refused_with_an_example_that_works(
    value: Any, message: str
) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        parse_schedule(value, now=NOW, min_interval=timedelta(minutes=1))
    text = str(caught.value)
    assert message in text
    example = _example_of(text)
    if caught.value.field == "timezone":
        assert parse_schedule("RRULE:FREQ=DAILY", timezone=example, now=NOW)
    else:
        assert parse_schedule(example, now=NOW).next_after(NOW) is not None, example


def test_an_unknown_tzid_is_the_unknown_time_zone_error() -> None:
    with pytest.raises(UnknownTimeZone):
        parse_schedule("DTSTART;TZID=Nowhere:20260601T090000\nRRULE:FREQ=DAILY", now=NOW)


@pytest.mark.parametrize(
    ("value", "minimum", "shortest"),
    [
        ("RRULE:FREQ=SECONDLY;INTERVAL=30", timedelta(minutes=1), "30s"),
        ("RRULE:FREQ=MINUTELY;BYSECOND=0,20,40", timedelta(minutes=1), "20s"),
        ("RRULE:FREQ=HOURLY;BYMINUTE=0,45", timedelta(hours=1), "15m"),  # 00:45 -> 01:00
        ("RRULE:FREQ=DAILY;BYHOUR=9,10;BYMINUTE=0,30", timedelta(hours=1), "30m"),
        ("RRULE:FREQ=WEEKLY;BYDAY=MO,TU;BYHOUR=23;BYMINUTE=0", timedelta(days=2), "1d"),
    ],
)
def test_rules_that_fire_more_often_than_the_minimum_interval_are_refused(
    value: str, minimum: timedelta, shortest: str
) -> None:
    with pytest.raises(InvalidSchedule, match=f"can fire every {shortest}, more often than"):
        parse_schedule(value, now=NOW, min_interval=minimum)
    parse_schedule(value, now=NOW, min_interval=minimum / 100)


@pytest.mark.parametrize(
    "value",
    [
        "RRULE:FREQ=MINUTELY;INTERVAL=5",
        "RRULE:FREQ=DAILY;INTERVAL=2;BYHOUR=0,23",  # 23:00 -> 00:00 two days later: 25h
        "RRULE:FREQ=HOURLY;INTERVAL=2;BYMINUTE=0,59",  # 59 minutes apart at least
    ],
)
def test_rules_within_the_minimum_interval_are_accepted(value: str) -> None:
    parse_schedule(value, now=NOW, min_interval=timedelta(minutes=5))


# --- words -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (
            "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;BYHOUR=9;BYMINUTE=0",
            "every 2 weeks on Tuesday and Thursday at 09:00, from 2026-06-01",
        ),
        ("RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;BYHOUR=17", "on the last weekday of"),
        ("RRULE:FREQ=MONTHLY;BYDAY=SA,SU;BYSETPOS=1", "on the 1st Saturday or Sunday of every"),
        ("RRULE:FREQ=MONTHLY;BYDAY=-1FR,1MO;BYHOUR=8", "on the last Friday and the 1st Monday of"),
        ("RRULE:FREQ=MONTHLY;BYMONTHDAY=1,15;BYHOUR=8", "on the 1st and 15th of every month at 08"),
        ("RRULE:FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=-2", "on the 2nd-to-last day of every 3 months"),
        ("RRULE:FREQ=MONTHLY;BYMONTHDAY=13;BYDAY=FR", "on the 13th of every month if it is a Fr"),
        ("RRULE:FREQ=MONTHLY;BYDAY=MO", "on every Monday of every month at 00:00"),
        ("RRULE:FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=15;BYHOUR=12", "on March 15 every year at 12:00"),
        ("RRULE:FREQ=YEARLY;BYMONTH=5;BYDAY=2SU", "on the 2nd Sunday of May every year at 00:00"),
        ("RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-1", "on the last day of February every year"),
        ("RRULE:FREQ=YEARLY;BYYEARDAY=100,-1", "on the 100th and last day of every year"),
        ("RRULE:FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO", "on every Monday in week 20 of every year"),
        ("RRULE:FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9", "every weekday at 09:00"),
        ("RRULE:FREQ=DAILY;BYDAY=SA,SU;BYHOUR=9;BYMINUTE=30", "on Saturday and Sunday at 09:30"),
        ("RRULE:FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7", "every day at 8 times from 00:00 to 07:00"),
        ("RRULE:FREQ=DAILY;BYHOUR=9;BYSECOND=30", "every day at 09:00:30"),
        ("RRULE:FREQ=HOURLY", "every hour on the hour"),
        ("RRULE:FREQ=HOURLY;BYMINUTE=15,45;BYHOUR=9,10,11", "at :15 and :45 during hours 9 thr"),
        (
            "RRULE:FREQ=MINUTELY;INTERVAL=15;BYHOUR=9,10,11,12;BYDAY=MO,TU,WE,TH,FR",
            "every 15 minutes during hours 9 through 12 on Monday through Friday, from 2026-06",
        ),
        ("RRULE:FREQ=SECONDLY;INTERVAL=30", "every 30 seconds, from 2026-06-01 14:00"),
        ("RRULE:FREQ=DAILY;BYHOUR=9;COUNT=10", "every day at 09:00, from 2026-06-01, 10 times"),
        ("RRULE:FREQ=DAILY;BYHOUR=9;UNTIL=20261231T230000Z", "at 09:00, until 2027-01-01 00:00"),
        (
            "DTSTART;TZID=Europe/Paris:20260601T090000\nRRULE:FREQ=WEEKLY\n"
            "EXDATE;TZID=Europe/Paris:20260608T090000\nEXDATE;VALUE=DATE:20260615",
            "every week on Monday at 09:00, except 2026-06-08 09:00 and 2026-06-15",
        ),
    ],
)
def test_a_rule_is_described_in_words_with_its_zone(value: str, words: str) -> None:
    described = rule(value, "Europe/Paris").describe()
    assert words in described
    assert described.endswith(" (Europe/Paris)")


def test_preview_shows_a_rules_words_and_its_next_fires_in_its_zone() -> None:
    schedule = rule("RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;BYHOUR=9;BYMINUTE=0", "Asia/Tokyo")
    shown = preview(schedule, count=3, after=NOW)
    assert shown.description == (
        "every 2 weeks on Tuesday and Thursday at 09:00, from 2026-06-01 (Asia/Tokyo)"
    )
    assert [f.local.strftime("%a %Y-%m-%d %H:%M") for f in shown.fires] == [
        "Tue 2026-06-02 09:00",
        "Thu 2026-06-04 09:00",
        "Tue 2026-06-16 09:00",
    ]


def test_latest_at_or_before_steps_back_over_exdates_and_stops_at_the_start_and_end() -> None:
    text = (
        "DTSTART;TZID=Europe/Paris:20260601T170000\nRRULE:FREQ=DAILY;COUNT=5\n"
        "EXDATE;TZID=Europe/Paris:20260604T170000"
    )
    schedule = rule(text)
    assert schedule.latest_at_or_before(utc(2026, 6, 1, 14, 59)) is None
    assert schedule.latest_at_or_before(utc(2026, 6, 1, 15)) == utc(2026, 6, 1, 15)
    assert schedule.latest_at_or_before(utc(2026, 6, 4, 20)) == utc(2026, 6, 3, 15)
    assert schedule.latest_at_or_before(utc(2027, 1, 1)) == utc(2026, 6, 5, 15)  # the last
    assert schedule.ends == datetime(2026, 6, 5, 17)


def test_a_rule_at_fixed_local_times_and_one_that_follows_real_time() -> None:
    assert rule("RRULE:FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "Europe/Paris").fixed_time
    assert rule("RRULE:FREQ=MONTHLY;BYDAY=1MO", "Europe/Paris").fixed_time
    assert not rule("RRULE:FREQ=HOURLY", "Europe/Paris").fixed_time
    assert not rule("RRULE:FREQ=MINUTELY;INTERVAL=30;BYHOUR=2", "Europe/Paris").fixed_time


# --- through the service and the engine -----------------------------------------------------

OWNER = "alice"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[tuple[Engine, FakeClock]]:
    store = SQLiteStore(tmp_path / "w.db")
    await store.open()
    clock = FakeClock(NOW)
    # Stepping through weeks of rules: history is pruned daily, not every 10 minutes, and a
    # finished task stays long enough to be read after the clock has walked past its end.
    config = EngineConfig(
        node_id="node-a",
        poll_interval=timedelta(hours=1),
        prune_every=timedelta(days=1),
        task_max_age=timedelta(days=365),
    )
    executors: dict[str, Executor] = {"noop": ScriptedExecutor(), "wakeup": WakeupExecutor()}
    try:
        with anyio.fail_after(10):
            async with Engine(store, clock=clock, config=config, executors=executors) as running:
                await run_until_idle(running)
                yield running, clock
    finally:
        await store.close()


async def test_a_task_with_a_rule_is_stored_and_fires_at_the_rules_instants(
    engine: tuple[Engine, FakeClock],
) -> None:
    running, clock = engine
    service = service_for(running)
    text = (
        "DTSTART;TZID=Europe/Paris:20260602T090000\n"
        "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;COUNT=3\n"
        "EXDATE;TZID=Europe/Paris:20260604T090000"
    )
    made = await service.create(OWNER, TaskSpec(name="standup", schedule=text, action=NoopAction()))
    task = made.task
    assert task.timezone == "Europe/Paris"
    assert task.schedule == {
        "type": "rrule",
        "rule": "FREQ=WEEKLY;INTERVAL=2;COUNT=3;BYDAY=TU,TH",
        "start": "2026-06-02T09:00:00",
        "exdates": ["2026-06-04T09:00:00"],
        "timezone": "Europe/Paris",
    }
    assert task.next_fire_at == utc(2026, 6, 2, 7)
    await step_to(running, clock, utc(2026, 7, 1))
    runs = await running.store.list_runs(None, task_id=task.id)
    assert sorted(r.scheduled_for or NOW for r in runs) == [utc(2026, 6, 2, 7), utc(2026, 6, 16, 7)]
    stored = await service.get(OWNER, task.id)
    assert stored.next_fire_at is None  # COUNT reached


async def test_the_object_form_goes_through_the_service_and_a_bad_rule_stores_nothing(
    engine: tuple[Engine, FakeClock],
) -> None:
    running, _ = engine
    service = service_for(running)
    spec = {
        "type": "rrule",
        "rule": "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=2;BYHOUR=9;BYMINUTE=0",
        "exdates": ["2026-07-02"],
    }
    made = await service.create(
        OWNER, TaskSpec(name="report", schedule=spec, timezone="Europe/Paris", action=NoopAction())
    )
    assert made.task.next_fire_at == utc(2026, 6, 2, 7)
    assert made.task.schedule["exdates"] == ["2026-07-02"]
    with pytest.raises(InvalidSchedule, match="BYEASTER is not part of RFC 5545"):
        await service.create(
            OWNER,
            TaskSpec(name="easter", schedule="RRULE:FREQ=YEARLY;BYEASTER=0", action=NoopAction()),
        )
    listed = await running.store.list_tasks(OWNER)
    assert [t.name for t in listed] == ["report"]
