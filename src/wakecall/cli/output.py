"""What the command line prints: tables and colour on a terminal, tab-separated text when
piped, JSON with `--json`. Standard library only."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, TextIO

__all__ = [
    "Cell",
    "Output",
    "compact",
    "duration_ms",
    "relative",
    "short_schedule",
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
    """One output stream. `tty`: a person reads it (aligned tables, colour unless `NO_COLOR`
    is set or `TERM=dumb`); otherwise tables are tab-separated lines under a header line."""

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

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> None:
        cells = [[_split(c) for c in row] for row in rows]
        if not self.tty:
            self.line("\t".join(h.lower() for h in headers))
            for row in cells:
                self.line("\t".join(_one_line(text).replace("\t", " ") for text, _ in row))
            return
        widths = [len(h) for h in headers]
        for row in cells:
            for i, (text, _) in enumerate(row):
                widths[i] = max(widths[i], len(_one_line(text)))
        last = len(headers) - 1
        self.line(
            "  ".join(
                self.style(h.ljust(widths[i]) if i < last else h, "bold")
                for i, h in enumerate(headers)
            ).rstrip()
        )
        for row in cells:
            parts = []
            for i, (text, style) in enumerate(row):
                shown = _one_line(text)
                padding = " " * (widths[i] - len(shown)) if i < last else ""
                parts.append(self.style(shown, style) + padding)
            self.line("  ".join(parts).rstrip())

    def fields(self, pairs: Sequence[tuple[str, Cell | Sequence[Cell]]]) -> None:
        """`label: value` lines, values aligned; a list value continues on indented lines."""
        width = max((len(label) for label, _ in pairs), default=0) + 2
        for label, value in pairs:
            values = (value or ["-"]) if isinstance(value, list) else [value]
            for i, item in enumerate(values):
                text, style = _split(item)
                head = f"{label}:".ljust(width) if i == 0 else " " * width
                self.line(self.style(head, "bold") + self.style(text, style))


def _split(cell: Cell) -> tuple[str, str]:
    return cell if isinstance(cell, tuple) else (cell, "")


def _one_line(text: str) -> str:
    return " ".join(text.split()) if "\n" in text or "\r" in text else text


def utc_text(moment: datetime | None) -> str:
    """An instant in UTC to the second: `2026-11-23 09:00:05Z`."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _span(seconds: float) -> str:
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m"
    if whole < 86400:
        hours, minutes = divmod(whole // 60, 60)
        return f"{hours}h{minutes}m" if hours < 10 and minutes else f"{hours}h"
    days, hours = divmod(whole // 3600, 24)
    return f"{days}d{hours}h" if days < 10 and hours else f"{days}d"


def relative(moment: datetime | None, now: datetime) -> str:
    """`in 14h`, `5m ago`, `now`."""
    if moment is None:
        return "-"
    seconds = (moment - now).total_seconds()
    if abs(seconds) < 1:
        return "now"
    return f"in {_span(seconds)}" if seconds > 0 else f"{_span(-seconds)} ago"


def duration_ms(value: int | None) -> str:
    if value is None:
        return "-"
    if value < 1000:
        return f"{value}ms"
    if value < 60_000:
        return f"{value / 1000:.1f}s"
    if value >= 3_600_000:
        return _span(value / 1000)
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
    `daily 09:00,17:30 MON,FRI`; `~30s` marks jitter."""
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
    else:
        text = json.dumps(schedule)
    if schedule.get("jitter"):
        text += f" ~{schedule['jitter']}"
    return text
