"""One base exception and subclasses that name what was wrong.

Every message says what was wrong and, where it helps, what would be right, so a tool can show
it to an agent unchanged.
"""

from __future__ import annotations

from pydantic import ValidationError


class WakecallError(Exception):
    """Base of every error wakecall raises on purpose."""


class InvalidInput(WakecallError, ValueError):
    """An argument was wrong. The message says what was wrong and shows a valid example."""

    def __init__(self, message: str, *, field: str | None = None, example: str | None = None):
        self.field = field
        self.example = example
        text = message
        if field and not message.startswith(field):
            text = f"{field}: {message}"
        if example:
            text = f"{text.rstrip('.')}. Example: {example}"
        super().__init__(text)


class InvalidSchedule(InvalidInput):
    """A schedule could not be parsed, can never fire, or breaks a configured bound."""


class UnknownTimeZone(InvalidSchedule):
    def __init__(self, zone: str):
        self.zone = zone
        super().__init__(
            f"unknown time zone {zone!r}; use an IANA name",
            field="timezone",
            example='"Europe/Paris", "America/New_York" or "UTC"',
        )


class NotFound(WakecallError, LookupError):
    """Something asked for by id does not exist (or belongs to another owner)."""


class TaskNotFound(NotFound):
    def __init__(self, task_id: str):
        self.task_id = task_id
        super().__init__(f"no task with id {task_id!r}; list_tasks shows the ids of your tasks")


class RunNotFound(NotFound):
    def __init__(self, run_id: str):
        self.run_id = run_id
        super().__init__(f"no run with id {run_id!r}; list_runs shows the runs of a task")


class LimitReached(WakecallError):
    """A per-owner limit would be exceeded. `limit` names it (the setting's name, e.g.
    `max_tasks`), `allowed` is its value."""

    def __init__(self, message: str, *, limit: str | None = None, allowed: int | None = None):
        self.limit = limit
        self.allowed = allowed
        super().__init__(message)


class Conflict(WakecallError):
    """The request contradicts the current state (for example resuming an expired task)."""


class LeaseLost(WakecallError):
    """A write was refused because the caller no longer holds the claim it names."""

    def __init__(self, what: str, node: str):
        self.node = node
        super().__init__(f"{what} is no longer claimed by node {node!r}")


class StoreError(WakecallError):
    """The store could not be opened or written."""


class NotAWakecallDatabase(StoreError):
    def __init__(self, path: str, why: str):
        super().__init__(
            f"{path} is not a wakecall database ({why}); point --db at a new file or at an "
            "existing wakecall database"
        )


class DatabaseBusy(StoreError):
    def __init__(self, path: str, seconds: float):
        super().__init__(
            f"{path} stayed locked by another writer for {seconds:g}s; stop the other process "
            "or raise the busy timeout"
        )


class UnsafeURL(InvalidInput):
    """An outgoing URL points somewhere wakecall refuses to connect to."""


def invalid_input_from(error: ValidationError) -> InvalidInput:
    """One readable InvalidInput out of a pydantic ValidationError."""
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "input"
        msg = item["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
        head, colon, rest = msg.partition(": ")
        if colon and item["loc"] and head in (str(item["loc"][-1]), "duration"):
            msg = rest  # the field's own name, which `where` says already
        parts.append(msg if msg.startswith(f"{where} ") else f"{where}: {msg}")
    return InvalidInput("; ".join(parts))
