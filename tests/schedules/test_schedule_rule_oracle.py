"""RFC 5545 rules checked against two oracles that walk real time around DST transitions, in
Europe/Paris, America/New_York, Australia/Lord_Howe (30-minute shifts) and Pacific/Apia in 2011
(which skipped 30 December whole), with UTC as a control.

- ``dateutil_oracle``: dateutil's own ``rrulestr`` reads the rule's text as written (its
  DTSTART, COUNT, UNTIL and EXDATE) and walks it from its DTSTART on naive local time, with
  nothing of ours between: no parser of ours, no periods re-anchored, no calendar moved, no
  COUNT turned into an end, no EXDATE matching of ours. zoneinfo alone then applies the DST
  rule: a daily-or-longer rule fires at the first instant showing its wall time (the first
  valid instant after a gap), an hourly-or-finer rule at every instant showing it. It shares
  dateutil's expansion with the code under test, so it checks everything built around it.
  One difference is deliberate, EXDATE_DATE: a date-only ``EXDATE;VALUE=DATE:20260323`` drops
  every occurrence of that local day here, where dateutil would drop only one at midnight;
  the oracle drops that day's wall times itself.
- ``brute_force``: every real minute of a span, turned into local time by zoneinfo, matched
  with a predicate written from the RFC's words for one family of rules (every other week on
  Tuesday and Thursday, the 2nd business day, the last Friday, the 15th and the last day, a
  daily COUNT with an EXDATE, the last Sunday of March and October, hourly and 20-minute
  rules): no dateutil and no timeline of ours. A fixed-time wall time fires at the first
  minute the local clock reaches it, or jumps past it, and never again; a real-time one at
  every minute that shows it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr

from wakecall.errors import InvalidSchedule
from wakecall.schedules import RruleSchedule, parse_schedule

SEED = 20261205
FIRES_COMPARED = 20
MINUTE = timedelta(minutes=1)
ZONES = ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Pacific/Apia", "UTC"]
YEARS = {"Pacific/Apia": 2011}


def transitions(zone_name: str, year: int) -> list[datetime]:
    """The instants (UTC, to the minute) where the zone's UTC offset changes during ``year``."""
    zone = ZoneInfo(zone_name)
    found = []
    moment = datetime(year, 1, 1, tzinfo=UTC)
    previous = moment.astimezone(zone).utcoffset()
    while moment.year == year:
        following = moment + timedelta(hours=1)
        offset = following.astimezone(zone).utcoffset()
        if offset != previous:
            low = moment
            while low.astimezone(zone).utcoffset() == previous:
                low += MINUTE
            found.append(low)
            previous = offset
        moment = following
    return found


TRANSITIONS = {zone: transitions(zone, YEARS.get(zone, 2026)) for zone in ZONES}
CONTROL = [datetime(2026, 3, 29, 1, tzinfo=UTC), datetime(2026, 10, 25, 1, tzinfo=UTC)]


def start_instants(zone: str) -> list[datetime]:
    changes = TRANSITIONS[zone] or CONTROL
    deltas = (-10800, -3600, -1, 0, 1, 1800, 3600, 5400)
    return [t + timedelta(seconds=d) for t in changes for d in deltas]


STARTS = {zone: start_instants(zone) for zone in ZONES}


def test_the_transitions_are_the_ones_the_tests_are_written_for() -> None:
    assert [len(TRANSITIONS[zone]) for zone in ZONES] == [2, 2, 2, 3, 0]
    apia_jump = TRANSITIONS["Pacific/Apia"][2]
    assert apia_jump == datetime(2011, 12, 30, 10, tzinfo=UTC)  # 29 Dec 24:00 -> 31 Dec 00:00


# --- DST resolution with zoneinfo alone -----------------------------------------------------


def instants_showing(wall: datetime, zone: ZoneInfo) -> list[datetime]:
    """Every instant whose local time in ``zone`` is ``wall``: none in a gap, two in a
    repeated stretch."""
    found: list[datetime] = []
    for fold in (0, 1):
        instant = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == wall and instant not in found:
            found.append(instant)
    return sorted(found)


def first_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """Where a fixed-time job set for ``wall`` fires: its first instant, or after the gap."""
    probe = wall
    while not (shown := instants_showing(probe, zone)):
        probe = probe.replace(second=0) + MINUTE  # tz database gaps end on whole minutes
    return shown[0]


def is_fixed(text: str) -> bool:
    return any(f"FREQ={f}" in text for f in ("DAILY", "WEEKLY", "MONTHLY", "YEARLY"))


def dateutil_oracle(text: str, zone_name: str, after: datetime) -> tuple[list[datetime], bool]:
    """The first fires strictly after ``after``: dateutil alone walks the rule's text from its
    DTSTART, zoneinfo alone applies the DST rule (see the module docstring). Also whether the
    rule ended within the walk (so there are no more)."""
    zone = ZoneInfo(zone_name)
    local_after = after.astimezone(zone).replace(tzinfo=None)
    fixed = is_fixed(text)
    # EXDATE_DATE
    lines = text.split("\n")
    days = {
        datetime.strptime(line.rpartition(":")[2], "%Y%m%d").date()
        for line in lines
        if line.startswith("EXDATE;VALUE=DATE:")
    }
    text = "\n".join(line for line in lines if not line.startswith("EXDATE;VALUE=DATE:"))
    found: list[datetime] = []
    last_wall = None
    ended = True
    for wall in rrulestr(text, forceset=True):
        last_wall = wall
        if wall.date() in days:
            continue
        if fixed:
            instant = first_instant(wall, zone)
            if instant > after and (not found or instant > found[-1]):
                found.append(instant)
        else:
            found.extend(i for i in instants_showing(wall, zone) if i > after)
        if wall > local_after + timedelta(days=2) and len(found) >= FIRES_COMPARED + 5:
            ended = False
            break
        if wall > local_after + timedelta(days=366 * 40):
            ended = False
            break
    found.sort()
    if not ended and last_wall is not None:
        # a later wall time's second pass could still come before some of these: keep those
        # at least a day before the last wall time walked
        cutoff = first_instant(last_wall, zone) - timedelta(hours=25)
        found = [i for i in found if i <= cutoff]
    return found[:FIRES_COMPARED], ended


def our_fires(schedule: Any, after: datetime, count: int) -> list[datetime]:
    found = []
    cursor = after
    for _ in range(count):
        cursor = schedule.next_after(cursor)
        if cursor is None:
            break
        found.append(cursor)
    return found


# --- random rules ----------------------------------------------------------------------------

DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


def random_rule(rng: random.Random, zone: str, start: datetime) -> str:
    """A rule text with a DTSTART some weeks before ``start``, at hours where clocks change."""
    local = start.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    dtstart = datetime.combine(
        local.date() - timedelta(days=rng.randint(0, 70)),
        time(rng.choice([0, 1, 2, 3, 4, 9, 23]), rng.choice([0, 15, 30, 45])),
    )
    freq = rng.choices(
        ["DAILY", "WEEKLY", "MONTHLY", "YEARLY", "HOURLY", "MINUTELY"], [4, 4, 4, 2, 3, 3]
    )[0]
    parts = [f"FREQ={freq}"]
    if freq == "MINUTELY":
        parts.append(f"INTERVAL={rng.choice([15, 20, 30, 45, 90, 7])}")
    elif rng.random() < 0.35:
        parts.append(f"INTERVAL={rng.choice([2, 3])}")
    clock_hours = [0, 1, 2, 3, 4, 23]
    if freq in ("HOURLY", "MINUTELY"):
        if rng.random() < 0.5:
            parts.append("BYHOUR=" + ",".join(map(str, sorted(rng.sample(clock_hours, 3)))))
        if freq == "HOURLY" and rng.random() < 0.5:
            parts.append("BYMINUTE=" + ",".join(map(str, sorted(rng.sample([0, 15, 30, 59], 2)))))
    else:
        if rng.random() < 0.7:
            hours = sorted(rng.sample([*clock_hours, 9, 12], rng.randint(1, 3)))
            parts.append("BYHOUR=" + ",".join(map(str, hours)))
        if rng.random() < 0.6:
            parts.append("BYMINUTE=" + ",".join(map(str, sorted(rng.sample([0, 15, 30], 2)))))
    parts.extend(random_days(rng, freq))
    if rng.random() < 0.2:
        parts.append(f"COUNT={rng.randint(3, 40)}")
    elif rng.random() < 0.2:
        until = local + timedelta(days=rng.randint(-3, 40), hours=rng.randint(0, 23))
        parts.append(f"UNTIL={until:%Y%m%dT%H%M%S}")
    text = f"DTSTART:{dtstart:%Y%m%dT%H%M%S}\nRRULE:{';'.join(parts)}"
    if rng.random() < 0.3:
        text += random_exdates(rng, text, local)
    return text


def random_days(rng: random.Random, freq: str) -> list[str]:
    kind = rng.random()
    if freq == "WEEKLY" and kind < 0.8:
        return ["BYDAY=" + ",".join(sorted(rng.sample(DAYS, rng.randint(1, 3)), key=DAYS.index))]
    if freq == "MONTHLY":
        if kind < 0.3:
            return ["BYDAY=MO,TU,WE,TH,FR", f"BYSETPOS={rng.choice([1, 2, 3, -1, -2])}"]
        if kind < 0.6:
            nth = rng.choice(["1", "2", "-1", "+4", "5"])
            return [f"BYDAY={nth}{rng.choice(DAYS)}"]
        if kind < 0.85:
            return [f"BYMONTHDAY={','.join(map(str, sorted(rng.sample([1, 15, 28, -1], 2))))}"]
    if freq == "YEARLY":
        months = ",".join(map(str, sorted(rng.sample([3, 4, 9, 10, 11, 12], 2))))
        if kind < 0.5:
            return [f"BYMONTH={months}", f"BYDAY={rng.choice(['-1', '1', '2'])}SU"]
        if kind < 0.8:
            return [f"BYMONTH={months}", f"BYMONTHDAY={rng.choice([1, 8, 25, 30, -1])}"]
        return [f"BYYEARDAY={rng.choice([1, 60, 95, 300, -1])}"]
    if freq in ("DAILY", "HOURLY", "MINUTELY") and kind < 0.3:
        return ["BYDAY=" + ",".join(sorted(rng.sample(DAYS, rng.randint(2, 5)), key=DAYS.index))]
    return []


def random_exdates(rng: random.Random, text: str, local: datetime) -> str:
    """EXDATE lines naming some of the rule's own occurrences near ``local`` (and a date)."""
    near = []
    for wall in rrulestr(text):
        if wall > local + timedelta(days=20) or len(near) > 60:
            break
        if wall > local - timedelta(days=2):
            near.append(wall)
    if not near:
        return ""
    picked = rng.sample(near, min(len(near), rng.randint(1, 3)))
    lines = "\nEXDATE:" + ",".join(f"{w:%Y%m%dT%H%M%S}" for w in sorted(picked))
    if rng.random() < 0.3:
        lines += f"\nEXDATE;VALUE=DATE:{rng.choice(near):%Y%m%d}"
    return lines


def random_cases(count: int) -> Iterator[tuple[str, str, datetime]]:
    rng = random.Random(SEED)
    for _ in range(count):
        zone = rng.choice(ZONES)
        start = rng.choice(STARTS[zone])
        yield random_rule(rng, zone, start), zone, start


def test_random_rules_agree_with_dateutil_walked_plainly_around_dst_transitions() -> None:
    compared = {"fixed": 0, "real": 0, "ended": 0, "refused": 0}
    for text, zone, start in random_cases(300):
        case = f"seed={SEED} zone={zone} start={start.isoformat()}\n{text}"
        try:
            schedule = parse_schedule(text, now=start, timezone=zone)
        except InvalidSchedule as error:
            if "has ended" in str(error) or "never fires within 50 years of now" in str(error):
                assert dateutil_oracle(text, zone, start) == ([], True), case
                compared["ended"] += 1
            else:
                compared["refused"] += 1
            continue
        assert isinstance(schedule, RruleSchedule)
        expected, ended = dateutil_oracle(text, zone, start)
        assert our_fires(schedule, start, len(expected)) == expected, case
        if ended and len(expected) < FIRES_COMPARED:  # nothing after the rule's last fire
            assert schedule.next_after(expected[-1] if expected else start) is None, case
        compared["fixed" if schedule.fixed_time else "real"] += 1
    # the comparison must not be vacuous
    assert compared["fixed"] > 150
    assert compared["real"] > 60
    assert compared["ended"] > 20
    assert compared["refused"] < 15


def walk_to(schedule: Any, at: datetime) -> datetime | None:
    """The last fire at or before ``at``, by walking next_after from a week earlier."""
    walked = None
    cursor = schedule.next_after(at - timedelta(days=8))
    while cursor is not None and cursor <= at:
        walked = cursor
        cursor = schedule.next_after(cursor)
    return walked


def test_latest_at_or_before_agrees_with_walking_next_after_for_random_rules() -> None:
    rng = random.Random(SEED + 1)
    checked = 0
    for text, zone, start in random_cases(200):
        try:
            schedule = parse_schedule(text, now=start, timezone=zone)
        except InvalidSchedule:
            continue
        for at in (start, start + timedelta(seconds=rng.randint(-7200, 7200))):
            case = f"zone={zone} at={at.isoformat()}\n{text}"
            latest = schedule.latest_at_or_before(at)
            walked = walk_to(schedule, at)
            if walked is not None:
                assert latest == walked, case
                checked += 1
            else:
                assert latest is None or latest <= at - timedelta(days=8), case
            if latest is not None:
                following = schedule.next_after(latest)
                assert following is None or following > at, case
    assert checked > 200


# --- brute force, without dateutil ------------------------------------------------------------


def second_weekday(day: date) -> bool:
    weekdays = [d for d in range(1, day.day + 1) if date(day.year, day.month, d).weekday() < 5]
    return day.weekday() < 5 and len(weekdays) == 2


def last_in_month(day: date) -> bool:
    return (day + timedelta(days=7)).month != day.month


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True)
class Family:
    """Rules of one shape: ``rule`` from a DTSTART, and the days and minutes they fire on,
    written from the RFC's words."""

    name: str
    rule: str
    days: Callable[[date, datetime], bool]  # (local day, DTSTART) -> fires that day
    minutes: Callable[[int, int], bool] | None = None  # real time: (hour, minute) -> fires


FAMILIES = [
    Family(
        "every other week on Tuesday and Thursday",
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH",
        lambda d, s: d.weekday() in (1, 3) and (monday_of(d) - monday_of(s.date())).days % 14 == 0,
    ),
    Family(
        "the 2nd business day",
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=2",
        lambda d, s: second_weekday(d),
    ),
    Family(
        "the last Friday",
        "FREQ=MONTHLY;BYDAY=-1FR",
        lambda d, s: d.weekday() == 4 and (last_in_month(d)),
    ),
    Family(
        "the 15th and the last day",
        "FREQ=MONTHLY;BYMONTHDAY=15,-1",
        lambda d, s: d.day == 15 or (d + timedelta(days=1)).day == 1,
    ),
    Family(
        "the last Sunday of March and October",
        "FREQ=YEARLY;BYMONTH=3,10;BYDAY=-1SU",
        lambda d, s: d.month in (3, 10) and d.weekday() == 6 and last_in_month(d),
    ),
    Family(
        "30 days in a row but the 20th",
        "FREQ=DAILY;COUNT=30\nEXDATE:{exdate}",
        lambda d, s: 0 <= (d - s.date()).days < 30 and (d - s.date()).days != 19,
    ),
    Family("every hour at :30", "FREQ=HOURLY;BYMINUTE=30", lambda d, s: True, lambda h, m: m == 30),
    Family(
        "every 20 minutes from 01:00 to 03:59",
        "FREQ=MINUTELY;INTERVAL=20;BYHOUR=1,2,3",
        lambda d, s: True,
        lambda h, m: h in (1, 2, 3) and m % 20 == 0,
    ),
]
# the wall times fixed-time families are set for: in the gaps and repeated stretches of the
# zones above (02:xx in Paris and New York, 01:30-02:29 at Lord Howe, 03:xx at Apia)
FIXED_TIMES = [time(1, 30), time(2, 0), time(2, 15), time(2, 30), time(3, 30), time(9, 0)]


def minute_walk(zone_name: str, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """(instant, local wall time) for every real minute from ``start`` to ``end``."""
    zone = ZoneInfo(zone_name)
    walk = []
    moment = start
    while moment <= end:
        walk.append((moment, moment.astimezone(zone).replace(tzinfo=None)))
        moment += MINUTE
    return walk


def brute_force(
    walk: list[tuple[datetime, datetime]], family: Family, dtstart: datetime, at: time | None
) -> list[datetime]:
    """Fires in the walk after its first minute (see the module docstring)."""

    def matches(wall: datetime) -> bool:
        if family.minutes is not None:
            if not family.minutes(wall.hour, wall.minute):
                return False
        elif wall.time() != at:
            return False
        return wall >= dtstart and family.days(wall.date(), dtstart)

    fires = []
    reached = walk[0][1]  # the furthest the local clock has been
    for instant, wall in walk[1:]:
        if family.minutes is not None:
            if matches(wall):
                fires.append(instant)
            continue
        if wall > reached:
            passed = reached + MINUTE
            while passed <= wall and not matches(passed):
                passed += MINUTE
            if passed <= wall:
                fires.append(instant)
            reached = wall
    return fires


WINDOW = timedelta(days=12)


@pytest.mark.parametrize("zone", ZONES[:-1])
def test_rule_families_agree_with_a_minute_by_minute_walk_of_real_time(zone: str) -> None:
    checked = near_transition = 0
    for transition in TRANSITIONS[zone]:
        walk = minute_walk(zone, transition - WINDOW, transition + WINDOW)
        local_day = transition.astimezone(ZoneInfo(zone)).date()
        for family in FAMILIES:
            for at in [time(0, 0)] if family.minutes else FIXED_TIMES:
                # a DTSTART weeks before: the weekly phase and the COUNT start there
                first = local_day - timedelta(days=10 if "COUNT" in family.rule else 45)
                dtstart = datetime.combine(first, at)
                exdate = datetime.combine(first + timedelta(days=19), at)
                rule = family.rule.format(exdate=f"{exdate:%Y%m%dT%H%M%S}")
                text = f"DTSTART:{dtstart:%Y%m%dT%H%M%S}\nRRULE:{rule}"
                schedule = parse_schedule(text, now=transition - WINDOW, timezone=zone)
                expected = brute_force(walk, family, dtstart, None if family.minutes else at)
                found = []
                cursor = schedule.next_after(walk[0][0])
                while cursor is not None and cursor <= walk[-1][0]:
                    found.append(cursor)
                    cursor = schedule.next_after(cursor)
                case = f"{family.name} at {at} in {zone} around {transition}"
                assert found == expected, case
                for fire in expected:
                    assert schedule.latest_at_or_before(fire) == fire, case
                if expected:
                    checked += 1
                near_transition += sum(abs(f - transition) <= timedelta(hours=1) for f in found)
    assert checked >= len(TRANSITIONS[zone]) * 30
    assert near_transition >= len(TRANSITIONS[zone]) * 4  # fires in gaps and repeated hours
