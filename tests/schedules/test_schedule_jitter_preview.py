"""Deterministic jitter and schedule previews."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from wakecall.errors import InvalidInput, UnknownTimeZone
from wakecall.schedules import (
    OnceSchedule,
    Preview,
    PreviewFire,
    jittered,
    parse_schedule,
    preview,
)

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def test_jitter_is_deterministic_for_the_same_task_and_fire() -> None:
    schedule = parse_schedule("*/5 * * * *", now=NOW, jitter="1m")
    fire = datetime(2026, 6, 1, 12, 5, tzinfo=UTC)
    following = schedule.next_after(fire)
    first = jittered(schedule, "task-1", fire, following)
    assert jittered(schedule, "task-1", fire, following) == first
    # the same instant written in another zone is the same fire
    paris = fire.astimezone(ZoneInfo("Europe/Paris"))
    assert jittered(schedule, "task-1", paris, following) == first
    assert first.utcoffset() == timedelta(0)


def test_jitter_spreads_tasks_and_fires_within_the_bound_and_never_early() -> None:
    schedule = parse_schedule("*/5 * * * *", now=NOW, jitter="1m")
    offsets = set()
    fire = NOW
    for index in range(200):
        fire = schedule.next_after(fire) or fire
        following = schedule.next_after(fire)
        for task in (f"task-{index}", "task-fixed"):
            moment = jittered(schedule, task, fire, following)
            assert fire <= moment < fire + timedelta(minutes=1)
            offsets.add(moment - fire)
    assert len(offsets) > 300  # spread, not one shared offset


def test_jitter_stays_strictly_before_the_next_fire() -> None:
    schedule = parse_schedule("@every 10s", now=NOW, jitter="1h")
    fire = NOW + timedelta(seconds=10)
    following = schedule.next_after(fire)
    assert following == fire + timedelta(seconds=10)
    moments = [jittered(schedule, f"task-{i}", fire, following) for i in range(500)]
    assert all(fire <= moment < following for moment in moments)
    assert max(moments) - fire > timedelta(seconds=9)  # uses the whole gap


def test_jitter_on_the_last_fire_uses_the_full_bound() -> None:
    schedule = parse_schedule("in 5m", now=NOW, jitter="30s")
    assert isinstance(schedule, OnceSchedule)
    moments = [jittered(schedule, f"task-{i}", schedule.at, None) for i in range(200)]
    assert all(schedule.at <= moment < schedule.at + timedelta(seconds=30) for moment in moments)
    assert max(moments) - schedule.at > timedelta(seconds=25)


def test_no_jitter_leaves_the_fire_unchanged() -> None:
    schedule = parse_schedule("*/5 * * * *", now=NOW)
    fire = datetime(2026, 6, 1, 12, 5, tzinfo=UTC)
    assert jittered(schedule, "task-1", fire, schedule.next_after(fire)) == fire


def test_preview_gives_count_fires_in_the_zone_and_in_utc_with_a_description() -> None:
    schedule = parse_schedule("0 9 * * MON-FRI", now=NOW, timezone="America/New_York")
    result = preview(schedule, count=3, after=NOW)
    assert isinstance(result, Preview)
    assert result.description == "at 09:00 on Monday through Friday (America/New_York)"
    assert result.timezone == "America/New_York"
    assert [fire.utc for fire in result.fires] == [
        datetime(2026, 6, 1, 13, tzinfo=UTC),
        datetime(2026, 6, 2, 13, tzinfo=UTC),
        datetime(2026, 6, 3, 13, tzinfo=UTC),
    ]
    for fire in result.fires:
        assert isinstance(fire, PreviewFire)
        assert fire.local == fire.utc
        assert fire.local.tzinfo == ZoneInfo("America/New_York")
        assert (fire.local.hour, fire.local.minute) == (9, 0)


def test_preview_can_show_fires_in_another_zone() -> None:
    schedule = parse_schedule("0 9 * * *", now=NOW, timezone="America/New_York")
    result = preview(schedule, count=1, after=NOW, timezone="Europe/Paris")
    assert result.timezone == "Europe/Paris"
    assert result.fires[0].local.hour == 15
    assert result.description.endswith("(America/New_York)")


def test_preview_of_a_once_schedule_stops_after_its_only_fire() -> None:
    schedule = parse_schedule("in 5m", now=NOW)
    result = preview(schedule, count=5, after=NOW)
    assert [fire.utc for fire in result.fires] == [NOW + timedelta(minutes=5)]
    assert result.timezone == "UTC"


def test_preview_defaults_to_five_fires() -> None:
    assert len(preview(parse_schedule("@hourly", now=NOW), after=NOW).fires) == 5


@pytest.mark.parametrize("count", [-1, 1001, True, 2.5])
def test_preview_refuses_a_bad_count(count: object) -> None:
    schedule = parse_schedule("@hourly", now=NOW)
    with pytest.raises(InvalidInput, match="count must be a whole number from 0 to 1000"):
        preview(schedule, count=count, after=NOW)  # type: ignore[arg-type]


def test_preview_refuses_an_unknown_zone() -> None:
    with pytest.raises(UnknownTimeZone):
        preview(parse_schedule("@hourly", now=NOW), after=NOW, timezone="Nowhere/Land")
