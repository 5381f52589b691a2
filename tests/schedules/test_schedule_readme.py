"""The README's Schedules section shows every cron extension the parser reads, and every
example it gives (cron and rules) parses and fires, so the section cannot drift from the code."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from wakecall.schedules import CronSchedule, IntervalSchedule, RruleSchedule, parse_schedule
from wakecall.schedules.cron import MACROS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def schedules_section() -> str:
    start = README.index("### Schedules\n")
    return README[start : README.index("\n### ", start + 1)]


def extension_rows() -> dict[str, tuple[str, str]]:
    """Extension -> (meaning, example), from the table of cron extensions."""
    rows = {}
    for line in schedules_section().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("Extension", "---"):
            rows[cells[0]] = (cells[1], cells[2].strip("`"))
    return rows


EXTENSIONS = ["6 fields", "names", "0 and 7", "?", "L", "LW", "nW", "nL", "n#k"]


def test_the_table_names_every_cron_extension_the_parser_reads() -> None:
    rows = extension_rows()
    assert set(rows) == {*EXTENSIONS, "macros", "@every"}
    macros = re.findall(r"`(@\w+)`", rows["macros"][0])
    assert sorted(macros) == sorted(MACROS)


@pytest.mark.parametrize("extension", [*EXTENSIONS, "macros"])
def test_each_documented_cron_example_parses_and_fires(extension: str) -> None:
    example = extension_rows()[extension][1]
    schedule = parse_schedule(example, now=NOW, timezone="Europe/Paris")
    assert isinstance(schedule, CronSchedule)
    assert schedule.next_after(NOW) is not None


def test_the_every_example_is_an_interval() -> None:
    example = extension_rows()["@every"][1]
    assert isinstance(parse_schedule(example, now=NOW), IntervalSchedule)


def test_each_documented_macro_parses() -> None:
    for macro in MACROS:
        assert parse_schedule(macro, now=NOW).next_after(NOW) is not None


def rule_examples() -> list[object]:
    """The rule examples of the section: JSON strings and objects between backticks."""
    found: list[object] = []
    for quoted in re.findall(r"`([^`]+)`", " ".join(schedules_section().split())):
        if quoted.startswith(('"RRULE', '"DTSTART', '{"type": "rrule"')):
            found.append(json.loads(quoted))
    return found


def test_each_documented_rule_example_parses_and_fires() -> None:
    examples = rule_examples()
    assert len(examples) == 4
    for example in examples:
        schedule = parse_schedule(example, now=NOW, timezone="Europe/Paris")  # type: ignore[arg-type]
        assert isinstance(schedule, RruleSchedule)
        assert schedule.next_after(NOW) is not None, example
