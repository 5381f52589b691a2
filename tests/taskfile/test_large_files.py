"""What keeps a large task file quick without changing what it means: each task's header line
found by one search of the text (and by the full scan where a multi-line string could fool
it), and each distinct schedule parsed once per apply."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wakecall.config import EngineConfig
from wakecall.engine import checks
from wakecall.errors import InvalidInput, InvalidSchedule
from wakecall.taskfile import TaskFileError, parse_task_file
from wakecall.taskfile.reading import _FileLines, _LineFinder

PLAIN = """\
[[tasks]]
id = "a"
schedule = "0 9 * * *"

  [[ tasks ]]   # indented, spaced, with a comment
id = "b"
schedule = "5m"
[tasks.execution]
retries = 1

[[tasks]]
id = "c"
schedule = "1h"
"""

FOOLED = '''\
[[tasks]]
id = "a"
schedule = "0 9 * * *"
metadata = { note = """
[[tasks]]
not a header
""" }

[[tasks]]
id = "b"
schedule = "5m"
'''


def test_header_lines_from_one_search_are_those_of_the_full_scan() -> None:
    tasks = parse_task_file(PLAIN)
    assert [t.line for t in tasks] == [1, 5, 11]
    full = _LineFinder(PLAIN)
    assert [t.line for t in tasks] == [full.block(i)[()] for i in range(3)]


def test_a_header_inside_a_multi_line_string_does_not_move_the_lines() -> None:
    tasks = parse_task_file(FOOLED)
    assert [t.id for t in tasks] == ["a", "b"]
    assert [t.line for t in tasks] == [1, 9]
    assert _FileLines(FOOLED).headers(2) == [1, 9]


def test_key_lines_are_found_when_a_problem_needs_them() -> None:
    text = PLAIN.replace("retries = 1", "retries = 99")
    with pytest.raises(TaskFileError) as refused:
        parse_task_file(text, "big.toml")
    assert refused.value.problems[0].startswith("big.toml:9: task 'b': execution.retries")


def test_a_refused_document_carries_the_standard_message_and_line() -> None:
    with pytest.raises(TaskFileError) as refused:
        parse_task_file('[[tasks]]\nid = "a"\nschedule = [1, ]]\n', "bad.toml")
    expected = "Expected newline or end of document after a statement (column 17)"
    assert refused.value.problems == [f"bad.toml:3: not valid TOML: {expected}"]


def test_an_offset_date_time_reads_as_the_same_instant() -> None:
    text = '[[tasks]]\nid = "a"\nschedule = 2031-01-02T03:04:05+02:00\n'
    (task,) = parse_task_file(text)
    assert task.spec.schedule == "2031-01-02T01:04:05Z"


def test_each_distinct_schedule_is_parsed_once_and_refusals_are_not_kept() -> None:
    now = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    schedules = checks.ParsedSchedules(now, EngineConfig())
    first = schedules.parse("0 9 * * *", timezone="Europe/Paris", jitter=None)
    again = schedules.parse("0 9 * * *", timezone="Europe/Paris", jitter=None)
    assert again is first
    assert first[1] == datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
    other_zone = schedules.parse("0 9 * * *", timezone="Asia/Tokyo", jitter=None)
    assert other_zone[1] == datetime(2026, 12, 6, 0, 0, tzinfo=UTC)
    table = {"type": "daily", "times": ["09:00"]}
    assert schedules.parse(dict(table), timezone=None, jitter=None) is schedules.parse(
        dict(table), timezone=None, jitter=None
    )
    for _ in range(2):
        with pytest.raises(InvalidSchedule):
            schedules.parse("2020-01-01T00:00:00Z", timezone=None, jitter=None)


def test_tables_that_are_the_same_json_share_a_parse_and_others_do_not() -> None:
    now = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    schedules = checks.ParsedSchedules(now, EngineConfig())
    daily = schedules.parse({"type": "daily", "times": ["09:00"]}, timezone=None, jitter=None)
    reordered = schedules.parse({"times": ["09:00"], "type": "daily"}, timezone=None, jitter=None)
    assert reordered is daily
    # 1 and true are equal in Python but not the same JSON: the second is refused, not served
    # the first's parse.
    every = schedules.parse({"type": "interval", "every": 60}, timezone=None, jitter=None)
    assert every[0].every == timedelta(seconds=60)
    assert schedules.parse({"type": "interval", "every": 60.0}, timezone=None, jitter=None)[
        0
    ].every == timedelta(seconds=60)
    schedules.parse({"type": "interval", "every": 1}, timezone=None, jitter=None)
    with pytest.raises(InvalidSchedule, match="got bool"):
        schedules.parse({"type": "interval", "every": True}, timezone=None, jitter=None)
    two = schedules.parse(
        {"type": "daily", "times": ["09:00", "10:00"]}, timezone=None, jitter=None
    )
    assert two is not daily


def test_a_schedule_is_compared_in_its_stored_form_once_per_distinct_value() -> None:
    now = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    schedules = checks.ParsedSchedules(now, EngineConfig())
    cron = schedules.stored_form("0 9 * * *", timezone="Europe/Paris", jitter=None)
    assert cron == ({"type": "cron", "expression": "0 9 * * *", "timezone": "Europe/Paris"}, False)
    assert schedules.stored_form("0 9 * * *", timezone="Europe/Paris", jitter=None) is cron
    interval = schedules.stored_form(
        {"type": "interval", "every": "5m"}, timezone=None, jitter=None
    )
    assert interval[0]["start"] == now.isoformat() and interval[1] is True
    assert schedules.stored_form("in 5m", timezone=None, jitter=None)[1] is True
    # Refusals are not kept: each time, the same words.
    for _ in range(2):
        with pytest.raises(InvalidInput, match="not in the future"):
            schedules.stored_form("2020-01-01T00:00:00Z", timezone=None, jitter=None)
    with pytest.raises(InvalidInput):
        schedules.stored_form("every blue moon", timezone=None, jitter=None)
