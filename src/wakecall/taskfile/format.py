"""The task-file format: its keys, how a `[[tasks]]` entry maps to a `TaskSpec`, and where a
problem found in a spec is written in the file."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any

__all__ = [
    "ACTION_TYPES",
    "EXECUTION_KEYS",
    "MAX_RETRIES",
    "RETRY_KEYS",
    "SPEC_PATHS",
    "TASK_KEYS",
    "field_path",
    "file_path",
    "iso",
    "jsonable",
    "schedule_value",
]

TASK_KEYS = (
    "id",
    "name",
    "schedule",
    "timezone",
    "jitter",
    "enabled",
    "action",
    "execution",
    "max_runs",
    "expires_at",
    "callback_url",
    "metadata",
    "depends_on",
    "trigger",
    "condition",
    "concurrency",
    "rate_limit",
)
EXECUTION_KEYS = (
    "timeout",
    "retries",
    "retry_delay",
    "retry_backoff",
    "retry_max_delay",
    "retry_jitter",
    "overlap",
    "max_queued",
    "catchup",
    "catchup_window",
    "pause_after_failures",
)
MAX_RETRIES = 19  # RetryPolicy allows 20 attempts, the first included
#: TaskSpec field → where it is written in a file.
SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "active": ("enabled",),
    "timeout": ("execution", "timeout"),
    "overlap": ("execution", "overlap"),
    "max_queued": ("execution", "max_queued"),
    "catchup": ("execution", "catchup"),
    "catchup_window": ("execution", "catchup_window"),
    "pause_after_failures": ("execution", "pause_after_failures"),
}
#: RetryPolicy field → its key in the execution table.
RETRY_KEYS = {
    "attempts": "retries",
    "delay": "retry_delay",
    "backoff": "retry_backoff",
    "max_delay": "retry_max_delay",
    "jitter": "retry_jitter",
}
ACTION_TYPES = ("noop", "wakeup", "webhook", "command")


def jsonable(value: Any) -> Any:
    """TOML values as JSON values: dates and times become ISO-8601 text."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date | time):
        return iso(value) if isinstance(value, datetime) else value.isoformat()
    return value


def file_path(loc: tuple[Any, ...]) -> tuple[str, ...]:
    """Where a TaskSpec validation error points in the file."""
    parts = tuple(str(p) for p in loc)
    if not parts:
        return ()
    head, rest = parts[0], parts[1:]
    if head in SPEC_PATHS:
        return SPEC_PATHS[head] + rest
    if head == "retry":
        return ("execution", RETRY_KEYS.get(rest[0], rest[0])) if rest else ("execution",)
    if head == "action":
        if rest and rest[0] in ACTION_TYPES:
            rest = rest[1:]
        return ("action", *rest) if rest else ("action", "type")
    return parts


def field_path(name: object) -> tuple[str, ...]:
    """The file path of an `InvalidInput.field` (e.g. "action.url", "schedule")."""
    if not isinstance(name, str) or not name:
        return ()
    return file_path(tuple(name.split(".")))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def schedule_value(stored: Mapping[str, Any]) -> str | dict[str, Any]:
    """A stored schedule as a file writes it (its zone and jitter are keys of their own):
    cron and once as text, interval and daily as a table."""
    kind = stored.get("type")
    if kind == "cron":
        return str(stored["expression"])
    if kind == "once":
        return iso(datetime.fromisoformat(stored["at"]))
    value = {k: v for k, v in stored.items() if k not in ("timezone", "jitter")}
    if kind == "interval":
        value["start"] = datetime.fromisoformat(value["start"]).astimezone(UTC)
    return value
