"""Random cron expressions checked against independent oracles, around real DST transitions.

The main oracle is cronsim. We differ from it on purpose in these cases, each named below and
excluded only where it applies:

- SIX_FIELD_DST: cronsim applies Debian cron's DST handling only to 5-field expressions; we
  apply it to every fixed-time expression, 6-field ones included. Those are checked against
  ``wall_clock_oracle`` (cronsim on naive wall time, then the DST rule applied with zoneinfo).
- CRONSIM_BEFORE_START: for a fixed-time job started during the second pass of a repeated hour,
  cronsim returns fires earlier than the start (the first pass). We never go backwards, so
  cronsim's fires at or before the start are dropped before comparing.
- CRONSIM_ODD_TRANSITIONS: for real-time jobs (``*`` in hour or minute) in zones whose clocks
  change by 30 minutes (Lord Howe), at :45 (Chatham) or at local midnight (Sao Paulo in
  2018-19), cronsim steps onto nonexistent local times and then skips fires, fires in hours
  that do not match, or never returns. Those are checked against ``real_time_oracle``, a scan
  of every real instant in a window, matched with cronsim's own field parser.
- SINGLE_VALUE_RANGE_STEP: cronsim reads ``7-7/4`` as ``7/4`` (7 and 11); we read it as the
  range 7-7 stepped by 4 (7 only). The generator never writes such a range; a test below pins
  our reading.
"""

from __future__ import annotations

import calendar
import functools
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim, CronSimError

from wakecall.errors import InvalidSchedule
from wakecall.schedules import CronSchedule, parse_schedule

SEED = 20261101
ZONES = [
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "UTC",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "Europe/Berlin",
]
ODD_TRANSITION_ZONES = {"Australia/Lord_Howe", "Pacific/Chatham", "America/Sao_Paulo"}
MONTH_NAMES = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
FIRES_COMPARED = 20


def transitions(zone_name: str, year: int) -> list[datetime]:
    """Instants (UTC, to the second) where the zone's UTC offset changes during ``year``."""
    zone = ZoneInfo(zone_name)

    def offset(moment: datetime) -> timedelta | None:
        return moment.astimezone(zone).utcoffset()

    found = []
    moment = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    while moment < end:
        following = moment + timedelta(hours=6)
        if offset(following) != offset(moment):
            low, high = moment, following
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                middle = middle.replace(microsecond=0)
                if offset(middle) == offset(low):
                    low = middle
                else:
                    high = middle
            found.append(high)
        moment = following
    return found


def start_instants(zone: str) -> list[datetime]:
    years = [2018, 2019] if zone == "America/Sao_Paulo" else [2026]
    changes = [t for year in years for t in transitions(zone, year)]
    if not changes:
        return [
            datetime(2026, 3, 29, tzinfo=UTC),
            datetime(2026, 6, 30, 23, 59, 59, tzinfo=UTC),
            datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
        ]
    deltas = (-10800, -3661, -1800, -1, 0, 1, 1800, 3600, 5400)
    return [t + timedelta(seconds=d) for t in changes for d in deltas]


STARTS = {zone: start_instants(zone) for zone in ZONES}


def random_term(
    rng: random.Random, low: int, high: int, names: list[str] | None = None, base: int = 0
) -> str:
    def value() -> str:
        number = rng.randint(low, high)
        if names and rng.random() < 0.3 and 0 <= number - base < len(names):
            name = names[number - base]
            return name if rng.random() < 0.5 else name.lower()
        return str(number)

    kind = rng.random()
    if kind < 0.25:
        return "*"
    if kind < 0.4:
        return f"*/{rng.randint(1, max(1, (high - low) // 2 + 1))}"
    if kind < 0.55:
        first = rng.randint(low, high - 1)
        last = rng.randint(first + 1, high)  # never a single-value range (see above)
        text = f"{first}-{last}"
        if names and rng.random() < 0.3 and first - base >= 0 and last - base < len(names):
            text = f"{names[first - base]}-{names[last - base]}"
        if rng.random() < 0.4:
            text += f"/{rng.randint(1, 5)}"
        return text
    if kind < 0.65:
        return f"{rng.randint(low, high)}/{rng.randint(1, 10)}"
    if kind < 0.8:
        return ",".join(value() for _ in range(rng.randint(2, 4)))
    return value()


def random_expression(rng: random.Random, with_seconds: bool) -> str:
    fields = [
        random_term(rng, 0, 59),
        random_term(rng, 0, 23),
        random_term(rng, 1, 31),
        random_term(rng, 1, 12, MONTH_NAMES, 1),
        random_term(rng, 0, 7, DAY_NAMES, 0),
    ]
    if rng.random() < 0.5:  # hours where clocks change
        fields[1] = rng.choice(["1", "2", "3", "0-3", "1,2", "2-4", "*/2", "1-3/2", "2,3", "0"])
    if rng.random() < 0.08:
        fields[2] = rng.choice(["L", "LW"])
    if rng.random() < 0.08:
        fields[4] = rng.choice(["5L", "0L", "FRI#2", "1#1", "SUN#5"])
    for index in (2, 3, 4):
        if rng.random() < 0.3:
            fields[index] = "*"
    if with_seconds:
        fields.insert(0, random_term(rng, 0, 59))
    return " ".join(fields)


def random_cases(count: int, zones: int = 4) -> Iterator[tuple[str, str, datetime]]:
    """(expression, zone, start) for ``count`` expressions, each in ``zones`` zones picked at
    random, from a start picked among the instants around that zone's transitions."""
    rng = random.Random(SEED)
    for _ in range(count):
        expression = random_expression(rng, with_seconds=rng.random() < 0.2)
        for zone in rng.sample(ZONES, zones):
            yield expression, zone, rng.choice(STARTS[zone])


def never_fires(expression: str, zone: str, start: datetime) -> bool:
    """True when we refuse the expression as never firing; cronsim must find no fire either."""
    try:
        CronSchedule(expression, zone)
        if CronSchedule(expression, zone).next_after(start) is not None:
            return False
    except InvalidSchedule as error:
        assert "never fires" in str(error)
    try:
        iterator = CronSim(expression, start.astimezone(ZoneInfo(zone)))
    except CronSimError:  # cronsim spots some of these up front too
        return True
    with pytest.raises(StopIteration):
        next(iterator)
    return True


def our_fires(schedule: CronSchedule, start: datetime, count: int) -> list[datetime]:
    found = []
    cursor: datetime | None = start
    for _ in range(count):
        assert cursor is not None
        cursor = schedule.next_after(cursor)
        if cursor is None:
            break
        found.append(cursor)
    return found


def cronsim_fires(expression: str, zone: str, start: datetime) -> list[datetime]:
    iterator = CronSim(expression, start.astimezone(ZoneInfo(zone)))
    found = []
    for _ in range(FIRES_COMPARED):
        try:
            found.append(next(iterator).astimezone(UTC))
        except StopIteration:
            break
    # CRONSIM_BEFORE_START
    return [fire for fire in found if fire > start]


def wall_clock_oracle(expression: str, zone_name: str, start: datetime) -> list[datetime]:
    """Fixed-time fires: cronsim matches naive wall times, zoneinfo applies the DST rule (first
    occurrence of a repeated time; the first valid instant after a skipped one)."""
    zone = ZoneInfo(zone_name)
    wall_start = start.astimezone(zone).replace(tzinfo=None) - timedelta(hours=4)
    iterator = CronSim(expression, wall_start)
    found: list[datetime] = []
    for wall in iterator:
        instant = _first_instant(wall, zone)
        if instant > start and (not found or instant > found[-1]):
            found.append(instant)
        if len(found) == FIRES_COMPARED:
            break
    return found


def _first_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    def exists(candidate: datetime) -> bool:
        local = candidate.replace(tzinfo=zone, fold=0)
        return local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == candidate

    if exists(wall):
        return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    probe = wall.replace(second=0)
    while not exists(probe):
        probe += timedelta(minutes=1)  # tz database gaps start and end on whole minutes
    return probe.replace(tzinfo=zone, fold=0).astimezone(UTC)


def real_time_oracle(
    expression: str, zone_name: str, start: datetime, end: datetime
) -> list[datetime]:
    """Real-time fires in (start, end]: every real instant whose local time matches, scanned one
    step at a time and matched with cronsim's own parsed fields."""
    zone = ZoneInfo(zone_name)
    parsed = CronSim(expression, datetime(2000, 1, 1))
    with_seconds = len(expression.split()) == 6
    step = timedelta(seconds=1) if with_seconds else timedelta(minutes=1)
    moment = start.replace(microsecond=0)
    moment = moment.replace(second=0) + step if not with_seconds else moment + step
    found = []
    while moment <= end:
        local = moment.astimezone(zone)
        if (
            local.second in parsed.seconds
            and local.minute in parsed.minutes
            and local.hour in parsed.hours
            and local.month in parsed.months
            and parsed.match_day(local.date())
        ):
            found.append(moment)
        moment += step
    return found


def describe_case(seed: int, expression: str, zone: str, start: datetime) -> str:
    return f"seed={seed} expression={expression!r} zone={zone} start={start.isoformat()}"


def test_random_cron_expressions_agree_with_cronsim_around_dst_transitions() -> None:
    compared = {"cronsim": 0, "wall_clock": 0, "real_time": 0, "never": 0}
    for expression, zone, start in random_cases(300):
        case = describe_case(SEED, expression, zone, start)
        if never_fires(expression, zone, start):
            compared["never"] += 1
            continue
        schedule = parse_schedule(expression, now=start, timezone=zone)
        assert isinstance(schedule, CronSchedule)
        six_fields = len(expression.split()) == 6
        if schedule.fixed_time and six_fields and zone not in ("UTC", "Asia/Kolkata"):
            # SIX_FIELD_DST
            expected = wall_clock_oracle(expression, zone, start)
            assert our_fires(schedule, start, len(expected)) == expected, case
            compared["wall_clock"] += 1
        elif not schedule.fixed_time and zone in ODD_TRANSITION_ZONES:
            # CRONSIM_ODD_TRANSITIONS: a window of real instants after the start
            end = start + (timedelta(minutes=30) if six_fields else timedelta(hours=4))
            expected = real_time_oracle(expression, zone, start, end)
            found = [f for f in our_fires(schedule, start, len(expected) + 1) if f <= end]
            assert found == expected, case
            compared["real_time"] += 1
        else:
            expected = cronsim_fires(expression, zone, start)
            assert our_fires(schedule, start, len(expected)) == expected, case
            compared["cronsim"] += 1
    # the comparison must not be vacuous
    assert compared["cronsim"] > 800
    assert compared["wall_clock"] > 15
    assert compared["real_time"] > 100


def test_random_fixed_time_expressions_agree_with_the_wall_clock_oracle() -> None:
    """A second, cronsim-independent check of the DST rule for every fixed-time expression."""
    checked = 0
    for expression, zone, start in random_cases(200):
        if never_fires(expression, zone, start):
            continue
        schedule = CronSchedule(expression, zone)
        if not schedule.fixed_time:
            continue
        expected = wall_clock_oracle(expression, zone, start)
        case = describe_case(SEED, expression, zone, start)
        assert our_fires(schedule, start, len(expected)) == expected, case
        checked += 1
    assert checked > 150


def walk_to(schedule: Any, at: datetime) -> tuple[datetime | None, timedelta]:
    """The last fire at or before ``at`` found by walking next_after from a little earlier,
    and how far back the walk started."""
    for window in (timedelta(days=2), timedelta(hours=1), timedelta(seconds=100)):
        walked = None
        cursor = schedule.next_after(at - window)
        steps = 0
        while cursor is not None and cursor <= at and steps < 400:
            walked = cursor
            cursor = schedule.next_after(cursor)
            steps += 1
        if steps < 400:
            return walked, window
    raise AssertionError("no window short enough to walk")


def test_latest_at_or_before_agrees_with_walking_next_after() -> None:
    rng = random.Random(SEED + 1)
    checked = 0
    for expression, zone, start in random_cases(200):
        if never_fires(expression, zone, start):
            continue
        schedule = CronSchedule(expression, zone)
        at = start + timedelta(seconds=rng.randint(-7200, 7200))
        if rng.random() < 0.5:  # just after a fire, wherever the expression's next one is
            fire = schedule.next_after(start)
            assert fire is not None
            at = fire + timedelta(seconds=rng.choice([0, 1, rng.randint(2, 7200)]))
        case = describe_case(SEED, expression, zone, at)
        latest = schedule.latest_at_or_before(at)
        walked, window = walk_to(schedule, at)
        if walked is not None:
            assert latest == walked, case
            checked += 1
        else:
            assert latest is None or latest <= at - window, case
        if latest is not None:
            following = schedule.next_after(latest)
            assert following is None or following > at, case
    assert checked > 400


@pytest.mark.parametrize(
    "value",
    [
        "@every 7m",
        "@every 1h30m",
        {"type": "daily", "times": ["01:30", "02:30", "09:00"]},
        {"type": "daily", "times": ["02:45", "03:15"], "weekdays": ["SUN", "MON"]},
        "2026-11-01T01:30:00",
    ],
)
@pytest.mark.parametrize("zone", ZONES)
def test_latest_at_or_before_agrees_with_walking_for_every_kind(value: Any, zone: str) -> None:
    rng = random.Random(SEED + 2)
    schedule = parse_schedule(value, now=datetime(2018, 1, 1, tzinfo=UTC), timezone=zone)
    for start in STARTS[zone]:
        at = start + timedelta(seconds=rng.randint(-7200, 7200))
        walked, window = walk_to(schedule, at)
        latest = schedule.latest_at_or_before(at)
        if walked is not None:
            assert latest == walked, (value, zone, at)
        else:
            assert latest is None or latest <= at - window, (value, zone, at)


def test_a_single_value_range_with_a_step_is_that_one_value() -> None:
    # SINGLE_VALUE_RANGE_STEP: cronsim would also fire in November (7/4 = 7, 11)
    schedule = CronSchedule("0 0 1 7-7/4 *")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert our_fires(schedule, start, 2) == [
        datetime(2026, 7, 1, tzinfo=UTC),
        datetime(2027, 7, 1, tzinfo=UTC),
    ]


# --- Quartz's W (the weekday nearest a day), which cronsim does not read ------------------------


def quartz_nearest_weekday(year: int, month: int, day: int) -> int | None:
    """Quartz's ``15W`` as its documentation words it: the weekday (Monday to Friday) nearest
    the day, within the same month. A Saturday moves to the Friday before, unless that is in
    the month before (``1W`` on a Saturday is Monday the 3rd); a Sunday to the Monday after,
    unless that is in the month after (then the Friday before). None when the month is
    shorter."""
    length = calendar.monthrange(year, month)[1]
    if day > length:
        return None
    weekday = date(year, month, day).weekday()  # Monday = 0
    if weekday == 5:
        return day - 1 if day > 1 else day + 2
    if weekday == 6:
        return day + 1 if day < length else day - 2
    return day


def last_weekday_of(year: int, month: int) -> int:
    length = calendar.monthrange(year, month)[1]
    return max(d for d in range(length - 2, length + 1) if date(year, month, d).weekday() < 5)


def nearest_weekday_oracle(
    expression: str, zone_name: str, start: datetime, end: datetime
) -> list[datetime]:
    """Fires in (start, end] of an expression whose day-of-month holds W terms: the local days
    Quartz's rule picks, cronsim's own parsed minutes, hours and months, and every real minute
    around those days turned into local time by zoneinfo. A fixed-time job fires when the
    local clock first reaches (or jumps past) its time; a real-time one whenever it shows it."""
    zone = ZoneInfo(zone_name)
    minute, hour, dom, month, _ = expression.split()
    parsed = CronSim(f"{minute} {hour} * {month} *", datetime(2000, 1, 1))
    nearest = [int(term[:-1]) for term in dom.split(",") if term != "LW"]
    fixed = not (minute.startswith("*") or hour.startswith("*"))

    @functools.cache
    def picked(day: date) -> bool:
        days = {quartz_nearest_weekday(day.year, day.month, near) for near in nearest}
        if "LW" in dom.split(","):
            days.add(last_weekday_of(day.year, day.month))
        return day.month in parsed.months and day.day in days

    def matches(wall: datetime) -> bool:
        return wall.minute in parsed.minutes and wall.hour in parsed.hours and picked(wall.date())

    fires: set[datetime] = set()
    day = start.astimezone(zone).date() - timedelta(days=1)
    while day <= end.astimezone(zone).date():
        if picked(day):
            # the real minutes of this local day, in any UTC offset (-12h to +14h)
            moment = datetime.combine(day, time(), UTC) - timedelta(hours=15)
            reached = moment.astimezone(zone).replace(tzinfo=None)
            while moment < datetime.combine(day, time(), UTC) + timedelta(hours=37):
                moment += timedelta(minutes=1)
                wall = moment.astimezone(zone).replace(tzinfo=None)
                if not fixed:
                    hit = matches(wall)
                else:
                    hit = wall > reached and any(
                        matches(reached + timedelta(minutes=step))
                        for step in range(1, (wall - reached) // timedelta(minutes=1) + 1)
                    )
                    reached = max(reached, wall)
                if hit and start < moment <= end:
                    fires.add(moment)
        day += timedelta(days=1)
    return sorted(fires)


def random_nearest_weekday_expression(rng: random.Random) -> str:
    minute = rng.choice(["0", "30", "15,45", "*/20", "59"])
    hour = rng.choice(["2", "9", "1-3", "0,23", "*/6", "*"])
    # the edges Quartz words specially (the 1st, a month's last day) come up often
    days = [1, 1, 2, 15, 28, 29, 30, 30, 31, 31, rng.randint(1, 31)]
    terms = [f"{rng.choice(days)}W" for _ in range(rng.randint(1, 2))]
    if rng.random() < 0.2:
        terms.append("LW")
    month = rng.choice(["*", "*", "*", "2,3", "MAR-NOV", "10-12"])
    return f"{minute} {hour} {','.join(terms)} {month} *"


W_ZONES = ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "UTC"]


def test_w_days_agree_with_quartzs_rule_walked_minute_by_minute() -> None:
    rng = random.Random(SEED + 3)
    checked = never = 0
    for _ in range(50):
        expression = random_nearest_weekday_expression(rng)
        zone = rng.choice(W_ZONES)
        start = rng.choice(STARTS.get(zone, STARTS["UTC"])) - timedelta(days=40)
        end = start + timedelta(days=90)
        case = describe_case(SEED + 3, expression, zone, start)
        try:
            schedule = parse_schedule(expression, now=start, timezone=zone)
        except InvalidSchedule as error:
            assert "never fires" in str(error), case
            never += 1
            continue
        expected = nearest_weekday_oracle(expression, zone, start, end)
        found = [f for f in our_fires(schedule, start, len(expected) + 1) if f <= end]
        assert found == expected, case
        for fire in expected[:5]:
            assert schedule.latest_at_or_before(fire) == fire, case
        checked += bool(expected)
    assert checked > 35
    assert never < 5


def test_a_w_day_the_clocks_skip_fires_when_they_jump() -> None:
    # Apia skipped Friday 30 December 2011 whole: the weekday nearest the 30th was a day that
    # never happened, so the job runs at the first instant after the gap, as for a skipped hour
    schedule = CronSchedule("0 9 30W 12 *", "Pacific/Apia")
    start = datetime(2011, 12, 1, tzinfo=UTC)
    end = datetime(2012, 1, 1, tzinfo=UTC)
    expected = nearest_weekday_oracle("0 9 30W 12 *", "Pacific/Apia", start, end)
    assert expected == [datetime(2011, 12, 30, 10, tzinfo=UTC)]  # 31 Dec 00:00 +14:00
    # a year later: Sunday the 30th -> Monday 31 December 2012, 09:00 +14:00
    assert our_fires(schedule, start, 2) == [expected[0], datetime(2012, 12, 30, 19, tzinfo=UTC)]


def test_w_terms_pick_the_days_quartz_documents() -> None:
    cases = {
        "0 9 15W * *": [date(2026, 2, 16), date(2026, 3, 16), date(2026, 8, 14)],  # Sun, Sun, Sat
        "0 9 1W * *": [date(2026, 8, 3), date(2026, 11, 2)],  # Saturday 1st -> Monday 3rd
        "0 9 31W * *": [date(2026, 1, 30), date(2026, 3, 31), date(2026, 5, 29)],  # Sat, Tue, Sun
        "0 9 30W 11 *": [date(2026, 11, 30)],  # Monday
    }
    for expression, days in cases.items():
        schedule = CronSchedule(expression)
        fired = {f.date() for f in our_fires(schedule, datetime(2026, 1, 1, tzinfo=UTC), 12)}
        assert set(days) <= fired, expression
        assert {date(2026, 2, 28), date(2026, 5, 31), date(2026, 1, 31)}.isdisjoint(fired)
