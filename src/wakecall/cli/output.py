"""What the command line prints: tables and colour on a terminal (as wide as the terminal),
tab-separated text when piped, JSON with `--json`; times and durations in human units."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TextIO

from wakecall.cli.tables import (
    GAP,
    Column,
    cut,
    plan_columns,
    shorten_ids,
    shown_width,
    terminal_width,
)
from wakecall.schedules import format_duration

__all__ = [
    "Cell",
    "Column",
    "Output",
    "compact",
    "duration_ms",
    "local_text",
    "relative",
    "short_schedule",
    "span",
    "utc_text",
]

#: A table cell: its text, or its text and a style name (see `Output.STYLES`).
Cell = str | tuple[str, str]

_STATUS_STYLES = {
    "active": "green",
    "success": "green",
    "delivered": "green",
    "paused": "yellow",
    "skipped": "yellow",
    "missed": "yellow",
    "cancelled": "yellow",
    "pending": "cyan",
    "queued": "cyan",
    "running": "cyan",
    "failure": "red",
    "timeout": "red",
    "failed": "red",
    "completed": "dim",
    "expired": "dim",
}


class Output:
    """One output stream. `tty`: a person reads it (aligned tables no wider than `width`,
    colour unless `NO_COLOR` is set or `TERM=dumb`); otherwise tables are tab-separated lines
    under a header line."""

    STYLES: ClassVar[dict[str, str]] = {
        "bold": "1",
        "dim": "2",
        "red": "31",
        "green": "32",
        "yellow": "33",
        "cyan": "36",
    }

    def __init__(self, stream: TextIO, *, json_mode: bool = False) -> None:
        self.stream = stream
        self.json_mode = json_mode
        try:
            self.tty = stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.color = (
            self.tty and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
        )
        self.width = terminal_width(stream) if self.tty else 0

    def line(self, text: str = "") -> None:
        print(text, file=self.stream)

    def json(self, data: Any) -> None:
        print(json.dumps(data, indent=2, ensure_ascii=False, default=str), file=self.stream)

    def style(self, text: str, style: str | None) -> str:
        if not self.color or not style or style not in self.STYLES or not text:
            return text
        return f"\033[{self.STYLES[style]}m{text}\033[0m"

    @staticmethod
    def status(status: str, text: str | None = None) -> Cell:
        """A status cell, coloured by what the status means; `text` to show more."""
        return (text or status, _STATUS_STYLES.get(status, ""))

    def table(self, columns: Sequence[Column | str], rows: Sequence[Sequence[Cell]]) -> None:
        """Rows under a header. On a terminal: aligned, ids abbreviated, texts cut and optional
        columns left out so that no line is wider than the terminal (see
        `wakecall.cli.tables`); otherwise tab-separated lines of every column's whole texts,
        under a lower-case header line."""
        specs = [Column(c) if isinstance(c, str) else c for c in columns]
        cells = [[_split(c) for c in row] for row in rows]
        if not self.tty:
            self.line("\t".join(c.title.lower() for c in specs))
            for row in cells:
                self.line("\t".join(_one_line(text).replace("\t", " ") for text, _ in row))
            return
        shown = [[(_one_line(text), style) for text, style in row] for row in cells]
        fitting = _shorten_ids(specs, shown)
        natural = [
            max([shown_width(spec.title), *(shown_width(row[i][0]) for row in shown)])
            for i, spec in enumerate(specs)
        ]
        planned = plan_columns(natural, fitting, self.width)
        kept = [i for i, width in enumerate(planned) if width is not None]
        widths = [planned[i] or 0 for i in kept]
        # Only a terminal too narrow for one character a column needs whole lines cut.
        fits = sum(widths) + GAP * (len(widths) - 1) <= self.width
        header = [(spec.title, "bold") for spec in specs]
        for row in [header, *shown]:
            line = self._table_line([row[i] for i in kept], widths, styled=fits)
            self.line(line if fits else cut(line, self.width))

    def _table_line(
        self, row: Sequence[tuple[str, str]], widths: Sequence[int], *, styled: bool
    ) -> str:
        parts = []
        last = len(row) - 1
        for i, (text, style) in enumerate(row):
            shown = cut(text, widths[i])
            padding = " " * (widths[i] - shown_width(shown)) if i < last else ""
            parts.append((self.style(shown, style) if styled else shown) + padding)
        return (" " * GAP).join(parts).rstrip()

    def fields(self, pairs: Sequence[tuple[str, Cell | Sequence[Cell]]]) -> None:
        """`label: value` lines, values aligned; a list value continues on indented lines."""
        width = max((len(label) for label, _ in pairs), default=0) + 2
        for label, value in pairs:
            values = (value or ["-"]) if isinstance(value, list) else [value]
            for i, item in enumerate(values):
                text, style = _split(item)
                head = f"{label}:".ljust(width) if i == 0 else " " * width
                self.line(self.style(head, "bold") + self.style(text, style))


def _shorten_ids(specs: Sequence[Column], rows: list[list[tuple[str, str]]]) -> list[Column]:
    """Abbreviate the ids of the `id` columns in `rows` (in place); the columns as they then
    fit (`min_width`: the width below which the ids would be cut)."""
    fitting = list(specs)
    for i, spec in enumerate(specs):
        if spec.fit == "id":
            short, floor = shorten_ids([row[i][0] for row in rows])
            fitting[i] = replace(spec, min_width=floor)
            for row, text in zip(rows, short, strict=True):
                row[i] = (text, row[i][1])
    return fitting


def _split(cell: Cell) -> tuple[str, str]:
    return cell if isinstance(cell, tuple) else (cell, "")


def _one_line(text: str) -> str:
    return " ".join(text.split()) if "\n" in text or "\r" in text else text


def utc_text(moment: datetime | None) -> str:
    """An instant in UTC to the second: `2026-11-23 09:00:05Z`."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def local_text(moment: datetime) -> str:
    """An instant in its own zone to the second: `2026-11-23 10:00:05+01:00`."""
    return moment.isoformat(sep=" ", timespec="seconds")


#: (below this many seconds, round to this many): seconds up to 10 minutes ("1m59s"), then
#: minutes up to 10 hours ("2h5m"), then hours up to 10 days ("3d4h"), then days.
_ROUNDING = ((600, 1), (36_000, 60), (864_000, 3600), (float("inf"), 86_400))


def span(seconds: float) -> str:
    """A length of time as `format_duration` writes it, rounded to the nearest of a unit that
    keeps it within a few percent: `45s`, `1m59s`, `2h5m`, `14h`, `3d4h`, `12d`."""
    seconds = abs(seconds)
    step = next(step for limit, step in _ROUNDING if seconds < limit)
    return format_duration(timedelta(seconds=round(seconds / step) * step))


def relative(moment: datetime | None, now: datetime) -> str:
    """`in 14h`, `1m59s ago`, `now`."""
    if moment is None:
        return "-"
    seconds = (moment - now).total_seconds()
    if abs(seconds) < 1:
        return "now"
    return f"in {span(seconds)}" if seconds > 0 else f"{span(seconds)} ago"


def duration_ms(value: int | None) -> str:
    """How long a run took: `250ms`, `4.2s`, `1m05s`, `2h5m`."""
    if value is None:
        return "-"
    if value < 1000:
        return f"{value}ms"
    if value < 60_000:
        return f"{value / 1000:.1f}s"
    if value >= 3_600_000:
        return span(value / 1000)
    return f"{value // 60_000}m{value // 1000 % 60:02d}s"


def compact(value: Any, limit: int = 60) -> str:
    """A one-line preview of any JSON value, cut to `limit` characters."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_schedule(schedule: Mapping[str, Any]) -> str:
    """A stored schedule in a few words: the cron expression, `every 15m`, `once 2026-…`,
    `daily 09:00,17:30 MON,FRI`, `RRULE:FREQ=WEEKLY;BYDAY=TU (2 dates excepted)`, `on
    demand`; `~30s` marks jitter."""
    kind = schedule.get("type")
    if kind == "cron":
        text = str(schedule.get("expression"))
    elif kind == "interval":
        text = f"every {schedule.get('every')}"
    elif kind == "once":
        at = datetime.fromisoformat(str(schedule.get("at")))
        text = f"once {utc_text(at)}"
    elif kind == "daily":
        text = "daily " + ",".join(schedule.get("times") or [])
        if schedule.get("weekdays"):
            text += " " + ",".join(schedule["weekdays"])
    elif kind == "rrule":
        text = f"RRULE:{schedule.get('rule')}"
        excepted = len(schedule.get("exdates") or [])
        if excepted:
            text += f" ({excepted} date{'' if excepted == 1 else 's'} excepted)"
    elif kind == "on_demand":
        text = "on demand"
    else:
        text = json.dumps(schedule)
    if schedule.get("jitter"):
        text += f" ~{schedule['jitter']}"
    return text
