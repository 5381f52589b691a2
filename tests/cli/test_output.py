"""Times and durations as the command line shows them (`wakecall.cli.output`): rounded to a
unit that keeps them close ("in 1m59s", never "in 1m" for 119 seconds), instants to the second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from wakecall.cli.output import duration_ms, local_text, relative, short_schedule, span, utc_text

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (1, "1s"),
        (45.4, "45s"),
        (59.6, "1m"),
        (60, "1m"),
        (119, "1m59s"),
        (119.6, "2m"),
        (599, "9m59s"),
        (601, "10m"),
        (59 * 60 + 50, "1h"),
        (2 * 3600 + 5 * 60 + 29, "2h5m"),
        (9 * 3600 + 59 * 60 + 59, "10h"),
        (14 * 3600 + 29 * 60, "14h"),
        (14 * 3600 + 31 * 60, "15h"),
        (3 * 86400 + 4 * 3600 + 20 * 60, "3d4h"),
        (12 * 86400 + 13 * 3600, "13d"),
    ],
)
def test_a_span_is_rounded_to_the_nearest_of_a_unit_that_keeps_it_close(
    seconds: float, shown: str
) -> None:
    assert span(seconds) == shown
    assert span(-seconds) == shown


def test_relative_times_say_in_or_ago_and_never_truncate_a_unit() -> None:
    assert relative(NOW + timedelta(seconds=119), NOW) == "in 1m59s"
    assert relative(NOW - timedelta(seconds=119), NOW) == "1m59s ago"
    assert relative(NOW + timedelta(hours=1, minutes=59), NOW) == "in 1h59m"
    assert relative(NOW + timedelta(milliseconds=400), NOW) == "now"
    assert relative(None, NOW) == "-"


def test_run_durations_read_at_a_glance() -> None:
    assert [duration_ms(v) for v in (None, 250, 4210, 65_000, 7_500_000)] == [
        "-", "250ms", "4.2s", "1m05s", "2h5m",
    ]  # fmt: skip


def test_instants_are_shown_to_the_second() -> None:
    paris = timezone(timedelta(hours=1))
    moment = datetime(2026, 3, 1, 9, 5, 7, 123456, tzinfo=paris)
    assert local_text(moment) == "2026-03-01 09:05:07+01:00"
    assert utc_text(moment) == "2026-03-01 08:05:07Z"


@pytest.mark.parametrize(
    ("schedule", "shown"),
    [
        ({"type": "cron", "expression": "0 9 * * MON-FRI"}, "0 9 * * MON-FRI"),
        ({"type": "interval", "every": "15m", "jitter": "30s"}, "every 15m ~30s"),
        ({"type": "daily", "times": ["09:00"], "weekdays": ["MON"]}, "daily 09:00 MON"),
        (
            {"type": "rrule", "rule": "FREQ=WEEKLY;BYDAY=TU", "exdates": ["2026-06-02T09:00:00"]},
            "RRULE:FREQ=WEEKLY;BYDAY=TU (1 date excepted)",
        ),
        (
            {"type": "rrule", "rule": "FREQ=DAILY", "start": "2026-06-02T09:00:00"},
            "RRULE:FREQ=DAILY",
        ),
        ({"type": "on_demand"}, "on demand"),
    ],
)
def test_every_kind_of_schedule_is_shown_in_a_few_words(
    schedule: dict[str, object], shown: str
) -> None:
    assert short_schedule(schedule) == shown
