"""Task files: an owner's tasks written down in TOML, applied to a store idempotently by id,
and written back out from it.

    [[tasks]]
    id = "nightly-report"              # the task's id: how a file finds its task again
    name = "nightly report"            # default: the id
    schedule = "0 2 * * *"             # text, or a table: {type = "daily", times = ["09:00"]}
    timezone = "Europe/Paris"          # default UTC
    enabled = true                     # false: the task is kept paused

    [tasks.action]                     # default: wake the agent with the task's name
    type = "webhook"
    url = "https://reports.example.com/run"

    [tasks.execution]
    timeout = "10m"
    retries = 2                        # retries after the first attempt
    retry_delay = "30s"
    overlap = "skip"

A task also takes `jitter`, `max_runs`, `expires_at`, `callback_url` and `metadata`; the
execution table also takes `retry_backoff`, `retry_max_delay`, `retry_jitter`, `max_queued`,
`catchup` and `catchup_window`. Every field means what it means in `create_task`.

Applying a file is declarative: each task it names ends up as the file says (a field the file
leaves out gets its default), created when its id is new, changed when it differs, left alone
when it is equal; with `prune`, the owner's other tasks are deleted. The whole file is checked
against the store before anything is written, so a file with any problem changes nothing, and
every problem is reported with its line. Wakeups (`schedule_wakeup`) are an agent's own
reminders, not configuration: files neither name, export nor prune them.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError

from wakecall.actions.command import CommandAction, CommandPolicy, validate_command
from wakecall.actions.webhook import WebhookAction, validate_webhook
from wakecall.delivery.signing import new_secret
from wakecall.engine.scheduler import schedule_of
from wakecall.engine.service import TASK_ID_PATTERN
from wakecall.errors import (
    Conflict,
    InvalidInput,
    InvalidSchedule,
    LimitReached,
    TaskNotFound,
    WakecallError,
)
from wakecall.models import ConditionSpec, RetryPolicy, Task, TaskPatch, TaskSpec, TaskStatus
from wakecall.net import OutboundPolicy, check_url
from wakecall.schedules import format_duration, parse_duration

if TYPE_CHECKING:
    from wakecall.engine.service import TaskService
    from wakecall.settings import Settings

__all__ = [
    "ActionPolicy",
    "ApplyFailed",
    "ApplyReport",
    "FileTask",
    "SpecCheck",
    "TaskChange",
    "TaskFileError",
    "apply_file",
    "apply_tasks",
    "export_tasks",
    "issue_callback_secret",
    "list_owner_tasks",
    "load_task_file",
    "parse_task_file",
]

#: Checks a task's action and callback URL against what the server allows; raises
#: `InvalidInput` when it does not.
SpecCheck = Callable[[TaskSpec], None]

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
)
MAX_RETRIES = 19  # RetryPolicy allows 20 attempts, the first included
_ENDED = (TaskStatus.COMPLETED, TaskStatus.EXPIRED)
#: What an ended task still lets change (see `TaskService.patch`).
_ENDED_MUTABLE = frozenset({"name", "metadata", "callback_url"})
#: TaskSpec field → where it is written in a file.
_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "active": ("enabled",),
    "timeout": ("execution", "timeout"),
    "overlap": ("execution", "overlap"),
    "max_queued": ("execution", "max_queued"),
    "catchup": ("execution", "catchup"),
    "catchup_window": ("execution", "catchup_window"),
}
#: RetryPolicy field → its key in the execution table.
_RETRY_KEYS = {
    "attempts": "retries",
    "delay": "retry_delay",
    "backoff": "retry_backoff",
    "max_delay": "retry_max_delay",
    "jitter": "retry_jitter",
}
_ACTION_TYPES = ("noop", "wakeup", "webhook", "command")


# --- what the server lets a task do ------------------------------------------------------
@dataclass(frozen=True)
class ActionPolicy:
    """The operator's limits on actions and callbacks (`--allow-outbound`, `--commands`), as
    the server applies them when an agent creates a task, for tasks that come another way."""

    outbound: OutboundPolicy
    commands: CommandPolicy

    @classmethod
    def from_settings(cls, settings: Settings) -> ActionPolicy:
        return cls(
            OutboundPolicy.parse_allow(settings.allow_outbound),
            CommandPolicy(enabled=bool(settings.commands), allow=settings.commands),
        )

    def check_action(self, action: BaseModel) -> str | None:
        """Refuse an action the server would not run; the resolved executable of a command."""
        if isinstance(action, WebhookAction):
            validate_webhook(action, self.outbound)
        elif isinstance(action, CommandAction):
            return validate_command(action, self.commands)
        return None

    def check_callback_url(self, url: str | None) -> None:
        if url is not None:
            check_url(url, self.outbound, field="callback_url")

    def check_condition(self, condition: ConditionSpec | None) -> None:
        if condition is not None:
            check_url(condition.url, self.outbound, field="condition.url")

    def check_spec(self, spec: TaskSpec) -> None:
        self.check_action(spec.action)
        self.check_callback_url(spec.callback_url)
        self.check_condition(spec.condition)


async def issue_callback_secret(
    service: TaskService, task_id: str, *, rotate: bool = False, grace: timedelta | None = None
) -> str:
    """A new signing secret for the task's callbacks, to be shown once. On a rotation the
    previous secrets keep signing for `grace`; otherwise they stop now."""
    now = service.engine.clock.now()
    secret = new_secret()
    retire = now + (grace or timedelta(0)) if rotate else now
    await service.engine.store.add_callback_secret(task_id, secret, now, retire)
    return secret


async def list_owner_tasks(
    service: TaskService,
    owner: str,
    *,
    kind: str | None = None,
    status: TaskStatus | None = None,
    name_contains: str | None = None,
) -> list[Task]:
    """Every task of the owner (filtered as `Store.list_tasks` filters), in id order."""
    found: list[Task] = []
    after: str | None = None
    while True:
        page = await service.engine.store.list_tasks(
            owner, kind=kind, status=status, name_contains=name_contains, after=after, limit=500
        )
        found.extend(page)
        if len(page) < 500:
            return found
        after = page[-1].id


# --- reading a file ----------------------------------------------------------------------
class TaskFileError(InvalidInput):
    """A task file that cannot be applied; `problems` holds one line per problem, each with
    the file name and, where known, the line."""

    def __init__(self, source: str, problems: Sequence[str]):
        self.source = source
        self.problems = list(problems)
        count = len(self.problems)
        summary = f"{source}: {count} problem{'s' if count != 1 else ''}; nothing was applied"
        super().__init__("\n".join([*self.problems, summary]))


@dataclass(frozen=True)
class FileTask:
    """One `[[tasks]]` entry, checked on its own (not yet against a store)."""

    id: str
    spec: TaskSpec
    index: int  # 0-based position in the file
    #: Line of each key path written for this task: () for its `[[tasks]]` header,
    #: ("execution", "timeout") for `timeout` in its `[tasks.execution]` table, ...
    key_lines: Mapping[tuple[str, ...], int] = field(default_factory=dict)

    @property
    def line(self) -> int | None:
        return self.key_lines.get(())


def _nearest(lines: Mapping[tuple[str, ...], int], path: tuple[str, ...]) -> int | None:
    """The line of `path`, or of the nearest enclosing key or table written."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


class _Problems:
    """Problems found in one file, each with its line where known; reported in line order."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._found: list[tuple[int, str]] = []

    def __bool__(self) -> bool:
        return bool(self._found)

    def add(
        self,
        message: str,
        *,
        line: int | None = None,
        task_id: str | None = None,
        index: int | None = None,
    ) -> None:
        where = self.source if line is None else f"{self.source}:{line}"
        who = ""
        if task_id is not None:
            who = f"task {task_id!r}: "
        elif index is not None:
            who = f"task #{index + 1}: "
        self._found.append((line or 0, f"{where}: {who}{message}"))

    def raise_if_any(self) -> None:
        if self._found:
            ordered = sorted(self._found, key=lambda item: item[0])
            raise TaskFileError(self.source, [text for _, text in ordered])


def load_task_file(path: str | Path) -> list[FileTask]:
    """Read and check a task file. `TaskFileError` lists every problem with its line;
    `InvalidInput` when the file cannot be read."""
    tasks, problems = _read_file(path)
    problems.raise_if_any()
    return tasks


def _read_file(path: str | Path) -> tuple[list[FileTask], _Problems]:
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read task file {source}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"task file {source} is not UTF-8 text ({exc.reason})") from exc
    return _read_text(text, str(path))


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def parse_task_file(text: str, source: str = "<tasks>") -> list[FileTask]:
    """Check the text of a task file: TOML syntax, the keys it uses, each task's fields (the
    same checks as `create_task`, except those that need the store or the current time) and
    ids used twice. `TaskFileError` lists every problem found."""
    tasks, problems = _read_text(text, source)
    problems.raise_if_any()
    return tasks


def _read_text(text: str, source: str) -> tuple[list[FileTask], _Problems]:
    """The tasks that passed their checks, and the problems of the others."""
    problems = _Problems(source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        position = _TOML_POSITION.search(message)
        if position is None:
            problems.add(f"not valid TOML: {message}")
        else:
            line, column = (int(n) for n in position.groups())
            problems.add(
                f"not valid TOML: {message[: position.start()]} (column {column})", line=line
            )
        return [], problems
    lines = _LineFinder(text)
    for key in data:
        if key != "tasks":
            problems.add(
                f"unknown top-level key {key!r}; a task file holds [[tasks]] tables",
                line=lines.top.get(key),
            )
    raw_tasks = data.get("tasks", [])
    if not isinstance(raw_tasks, list):
        problems.add(
            "'tasks' must be an array of tables: write [[tasks]]", line=lines.top.get("tasks")
        )
        raw_tasks = []
    tasks: list[FileTask] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(raw_tasks):
        key_lines = lines.block(index)
        task = _read_entry(entry, index, key_lines, problems)
        if task is None:
            continue
        if task.id in seen:
            problems.add(
                f"id {task.id!r} is used twice (first by task #{seen[task.id] + 1}); "
                "ids must be unique within a file",
                line=_nearest(key_lines, ("id",)),
                task_id=task.id,
            )
            continue
        seen[task.id] = index
        tasks.append(task)
    return tasks, problems


def _read_entry(
    entry: object, index: int, key_lines: Mapping[tuple[str, ...], int], problems: _Problems
) -> FileTask | None:
    """The entry as a task, or None after adding its problems (all of them, not the first)."""
    if not isinstance(entry, dict):
        problems.add("each task must be a table ([[tasks]])", line=key_lines.get(()), index=index)
        return None
    task_id = entry.get("id")
    if not isinstance(task_id, str) or not TASK_ID_PATTERN.fullmatch(task_id):
        shown = "missing" if task_id is None else f"{task_id!r} is not valid"
        problems.add(
            f"id: {shown}; give each task an id of 1 to 100 letters, digits, '_', '.' or '-', "
            'starting with a letter or digit, e.g. id = "nightly-report"',
            line=_nearest(key_lines, ("id",)),
            index=index,
        )
        task_id = None

    found = False

    def problem(message: str, path: tuple[str, ...]) -> None:
        nonlocal found
        found = True
        problems.add(message, line=_nearest(key_lines, path), task_id=task_id, index=index)

    for key in entry:
        if key not in TASK_KEYS:
            problem(f"unknown key {key!r}; a task takes {', '.join(TASK_KEYS)}", (key,))
    execution = entry.get("execution", {})
    if not isinstance(execution, dict):
        problem("execution must be a table ([tasks.execution])", ("execution",))
        execution = {}
    for key in execution:
        if key not in EXECUTION_KEYS:
            problem(
                f"unknown key {key!r} in execution; it takes {', '.join(EXECUTION_KEYS)}",
                ("execution", key),
            )
    retries = execution.get("retries", 0)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
        problem(
            f"execution.retries must be a whole number from 0 to {MAX_RETRIES} (the retries "
            f"after the first attempt), got {retries!r}",
            ("execution", "retries"),
        )
        retries = 0
    fields = _spec_fields(entry, task_id or "task", execution, retries)
    try:
        spec = TaskSpec.model_validate(fields)
    except ValidationError as exc:
        for item in exc.errors(include_url=False):
            path = _file_path(tuple(item["loc"]))
            message = item["msg"].removeprefix("Value error, ")
            problem(f"{'.'.join(path) or 'task'}: {message}", path)
        return None
    if found or task_id is None:
        return None
    return FileTask(task_id, spec, index, key_lines)


def _spec_fields(
    entry: dict[str, Any], task_id: str, execution: dict[str, Any], retries: int
) -> dict[str, Any]:
    name = entry.get("name", task_id)
    fields: dict[str, Any] = {"name": name}
    schedule = entry.get("schedule")
    if isinstance(schedule, datetime):  # a TOML date-time: an instant (local: in the zone)
        schedule = _iso(schedule) if schedule.tzinfo is not None else schedule.isoformat()
    fields["schedule"] = schedule
    for key in ("timezone", "jitter", "max_runs", "expires_at", "callback_url"):
        if key in entry:
            fields[key] = entry[key]
    if "enabled" in entry:
        fields["active"] = entry["enabled"]
    if "metadata" in entry:
        fields["metadata"] = _jsonable(entry["metadata"])
    action = entry.get("action")
    fields["action"] = {"type": "wakeup", "reason": name} if action is None else _jsonable(action)
    for key in ("timeout", "overlap", "max_queued", "catchup", "catchup_window"):
        if key in execution:
            fields[key] = execution[key]
    retry: dict[str, Any] = {"attempts": retries + 1}
    for policy_key, file_key in _RETRY_KEYS.items():
        if file_key in execution and policy_key != "attempts":
            retry[policy_key] = execution[file_key]
    fields["retry"] = retry
    return fields


def _jsonable(value: Any) -> Any:
    """TOML values as JSON values: dates and times become ISO-8601 text."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date | time):
        return _iso(value) if isinstance(value, datetime) else value.isoformat()
    return value


def _file_path(loc: tuple[Any, ...]) -> tuple[str, ...]:
    """Where a TaskSpec validation error points in the file."""
    parts = tuple(str(p) for p in loc)
    if not parts:
        return ()
    head, rest = parts[0], parts[1:]
    if head in _SPEC_PATHS:
        return _SPEC_PATHS[head] + rest
    if head == "retry":
        return ("execution", _RETRY_KEYS.get(rest[0], rest[0])) if rest else ("execution",)
    if head == "action":
        if rest and rest[0] in _ACTION_TYPES:
            rest = rest[1:]
        return ("action", *rest) if rest else ("action", "type")
    return parts


def _field_path(name: object) -> tuple[str, ...]:
    """The file path of an `InvalidInput.field` (e.g. "action.url", "schedule")."""
    if not isinstance(name, str) or not name:
        return ()
    return _file_path(tuple(name.split(".")))


class _LineFinder:
    """Finds where a task's keys are written, by scanning the text for `[[tasks]]` headers,
    `[tasks.x]` sub-tables and `key =` lines (tomllib reports no positions)."""

    _ARRAY_HEADER = re.compile(r"^\s*\[\[\s*([^\[\]]+?)\s*\]\]\s*(?:#.*)?$")
    _HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")
    _KEY_PART = r"""(?:[A-Za-z0-9_-]+|"[^"\\]*"|'[^']*')"""
    _KEY = re.compile(rf"^\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=(.*)$")

    def __init__(self, text: str) -> None:
        self.blocks: list[dict[tuple[str, ...], int]] = []
        #: Top-level keys and tables outside any task.
        self.top: dict[str, int] = {}
        current: dict[tuple[str, ...], int] | None = None
        section: tuple[str, ...] | None = ()  # None: inside a table that is not a task's
        closing: str | None = None  # inside a multi-line string ending with this
        for number, line in enumerate(text.splitlines(), 1):
            if closing is not None:
                if closing in line:
                    closing = None
                continue
            if header := self._ARRAY_HEADER.match(line):
                parts = self._parts(header.group(1))
                if parts == ("tasks",):
                    current, section = {(): number}, ()
                    self.blocks.append(current)
                else:
                    current, section = None, None
                    self.top.setdefault(parts[0] if parts else "", number)
            elif header := self._HEADER.match(line):
                parts = self._parts(header.group(1))
                if current is not None and parts[:1] == ("tasks",) and len(parts) > 1:
                    section = parts[1:]
                    current.setdefault(section, number)
                else:
                    current, section = None, None
                    self.top.setdefault(parts[0] if parts else "", number)
            elif key := self._KEY.match(line):
                parts = self._parts(key.group(1))
                if current is not None and section is not None:
                    current.setdefault(section + parts, number)
                elif section is not None and parts:
                    self.top.setdefault(parts[0], number)
                value = key.group(2)
                for quote in ('"""', "'''"):
                    if value.count(quote) % 2 == 1:
                        closing = quote
                        break

    @classmethod
    def _parts(cls, dotted: str) -> tuple[str, ...]:
        return tuple(p.strip("\"'") for p in re.findall(cls._KEY_PART, dotted))

    def block(self, index: int) -> dict[tuple[str, ...], int]:
        """The key lines of the task at `index` (empty when tasks are not written as
        `[[tasks]]` tables)."""
        return self.blocks[index] if index < len(self.blocks) else {}


# --- applying ----------------------------------------------------------------------------
Op = Literal["create", "change", "unchanged", "delete"]
_OPS: tuple[Op, ...] = ("create", "change", "unchanged", "delete")
_SYMBOLS = {"create": "+", "change": "~", "unchanged": "=", "delete": "-"}
_DONE = {"create": "created", "change": "changed", "unchanged": "unchanged", "delete": "deleted"}
_PLANNED = {
    "create": "would be created",
    "change": "would change",
    "unchanged": "unchanged",
    "delete": "would be deleted",
}


@dataclass(frozen=True)
class TaskChange:
    """What applying a file did (or, in a dry run, would do) to one task."""

    op: Op
    id: str
    name: str
    fields: tuple[str, ...] = ()  # for a change: the file fields that differ
    status: str | None = None  # the task's status after the apply
    line: int | None = None
    callback_secret: str | None = None  # issued for a new callback URL; shown once

    def describe(self, *, dry_run: bool = False) -> str:
        verb = (_PLANNED if dry_run else _DONE)[self.op]
        text = f"{_SYMBOLS[self.op]} {self.id} ({self.name}): {verb}"
        if self.fields:
            text += f" ({', '.join(self.fields)})"
        if self.status in ("completed", "expired"):
            text += f" [{self.status}]"
        if self.callback_secret:
            text += f"; callback secret {self.callback_secret} (shown once)"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "id": self.id,
            "name": self.name,
            "fields": list(self.fields),
            "status": self.status,
            "line": self.line,
            "callback_secret": self.callback_secret,
        }


@dataclass(frozen=True)
class ApplyReport:
    source: str
    owner: str
    dry_run: bool
    changes: tuple[TaskChange, ...]
    #: Ids of the owner's tasks the file does not name, left as they are (without `prune`).
    unnamed: tuple[str, ...] = ()

    def count(self, op: Op) -> int:
        return sum(1 for c in self.changes if c.op == op)

    def summary(self) -> str:
        planned = self.dry_run
        parts = [
            f"{self.count('create')} {'to create' if planned else 'created'}",
            f"{self.count('change')} {'to change' if planned else 'changed'}",
            f"{self.count('unchanged')} unchanged",
        ]
        if self.count("delete"):
            parts.append(f"{self.count('delete')} {'to delete' if planned else 'deleted'}")
        text = ", ".join(parts)
        if self.unnamed:
            text += (
                f"; {len(self.unnamed)} task{'s' if len(self.unnamed) != 1 else ''} not in the "
                "file left as they are (--prune deletes them)"
            )
        if self.dry_run:
            text += "; dry run: nothing was changed"
        return text

    def lines(self) -> list[str]:
        return [c.describe(dry_run=self.dry_run) for c in self.changes] + [self.summary()]

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "owner": self.owner,
            "dry_run": self.dry_run,
            "changes": [c.to_json() for c in self.changes],
            "unnamed": list(self.unnamed),
            "counts": {op: self.count(op) for op in _OPS},
        }


class ApplyFailed(WakecallError):
    """Applying stopped part way (the store failed, or changed under us after the check);
    `report` holds what was done before."""

    def __init__(self, report: ApplyReport, cause: WakecallError):
        self.report = report
        self.cause = cause
        done = sum(1 for c in report.changes if c.op != "unchanged")
        super().__init__(f"{report.source}: applied {done} changes, then stopped: {cause}")


@dataclass
class _Step:
    change: TaskChange
    task: FileTask | None = None
    patch: dict[str, Any] = field(default_factory=dict)
    pause: bool = False
    resume: bool = False
    new_callback: bool = False


async def apply_file(
    service: TaskService,
    owner: str,
    path: str | Path,
    *,
    prune: bool = False,
    dry_run: bool = False,
    check: SpecCheck | None = None,
) -> ApplyReport:
    """Apply a task file to `owner`'s tasks (see the module docstring); the report says what
    happened to each task. `check` refuses actions and callback URLs the server would not
    accept (`ActionPolicy.check_spec`). Raises `TaskFileError` (nothing applied) listing every
    problem in the file or between the file and the store, `InvalidInput` when the file cannot
    be read, and `ApplyFailed` if the store fails part way."""
    tasks, problems = _read_file(path)
    return await _apply(service, owner, tasks, problems, prune, dry_run, check)


async def apply_tasks(
    service: TaskService,
    owner: str,
    tasks: Sequence[FileTask],
    *,
    source: str,
    prune: bool = False,
    dry_run: bool = False,
    check: SpecCheck | None = None,
) -> ApplyReport:
    """`apply_file` for tasks already read (`parse_task_file`)."""
    return await _apply(service, owner, tasks, _Problems(source), prune, dry_run, check)


async def _apply(
    service: TaskService,
    owner: str,
    tasks: Sequence[FileTask],
    problems: _Problems,
    prune: bool,
    dry_run: bool,
    check: SpecCheck | None,
) -> ApplyReport:
    source = problems.source
    now = service.engine.clock.now()
    steps: list[_Step] = []
    for task in tasks:
        try:
            steps.append(await _plan(service, owner, task, now, check))
        except (InvalidInput, Conflict, LimitReached) as exc:
            path = _field_path(getattr(exc, "field", None))
            problems.add(str(exc), line=_nearest(task.key_lines, path), task_id=task.id)
    named = {t.id for t in tasks}
    others = [t for t in await list_owner_tasks(service, owner, kind="task") if t.id not in named]
    if prune:
        steps += [_Step(TaskChange("delete", t.id, t.name, status=str(t.status))) for t in others]
    if not problems:
        problem = await _check_limit(service, owner, steps, others if prune else [])
        if problem:
            problems.add(problem)
    problems.raise_if_any()
    unnamed = () if prune else tuple(t.id for t in others)
    if dry_run:
        return ApplyReport(source, owner, True, tuple(s.change for s in steps), unnamed)
    done: list[TaskChange] = []
    try:
        for step in steps:
            done.append(await _execute(service, owner, step, source))
    except WakecallError as exc:
        raise ApplyFailed(ApplyReport(source, owner, False, tuple(done), unnamed), exc) from exc
    return ApplyReport(source, owner, False, tuple(done), unnamed)


async def _plan(
    service: TaskService, owner: str, task: FileTask, now: datetime, check: SpecCheck | None
) -> _Step:
    """What applying `task` takes, checked as the service will check it; nothing written."""
    store = service.engine.store
    spec = task.spec
    zone = spec.timezone if "timezone" in spec.model_fields_set else None
    try:
        current = await store.get_task(owner, task.id)
    except TaskNotFound:
        current = None
    if current is None:
        try:
            await store.get_task(None, task.id)
        except TaskNotFound:
            pass
        else:
            raise Conflict(f"id {task.id!r} belongs to a task of another owner; choose another id")
        if check is not None:
            check(spec)
        _check_new(service, spec, zone, now)
        status = "active" if spec.active else "paused"
        change = TaskChange("create", task.id, spec.name, status=status, line=task.line)
        return _Step(change, task, new_callback=spec.callback_url is not None)
    if current.kind != "task":
        raise Conflict(
            f"{task.id} is a wakeup, not a task; a task file cannot manage it (give the task "
            "another id)"
        )
    names, patch = _diff(service, current, spec, zone, now)
    if check is not None and ("action" in names or "callback_url" in names):
        check(spec)
    ended = current.status in _ENDED
    pause = not ended and not spec.active and current.status == TaskStatus.ACTIVE
    resume = not ended and spec.active and current.status == TaskStatus.PAUSED
    if ended and set(names) - _ENDED_MUTABLE:
        raise Conflict(
            f"the task has ended ({current.status}"
            f"{', ' + current.end_reason if current.end_reason else ''}), so only its name, "
            f"metadata and callback_url can still change, not {', '.join(names)}; delete it "
            "(or give the file's task a new id) to schedule it again"
        )
    max_runs = patch.get("max_runs")
    if max_runs is not None and max_runs <= current.run_count:
        raise InvalidInput(
            f"max_runs must be above the {current.run_count} runs already made",
            field="max_runs",
            example=str(current.run_count + 10),
        )
    expires_at = patch.get("expires_at")
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("expires_at is in the past", field="expires_at")
    if resume:
        _check_resume(service, current, spec, zone, patch, now)
    if pause or resume:
        names.append("enabled")
    status = "paused" if pause else "active" if resume else str(current.status)
    change = TaskChange(
        "change" if names else "unchanged", task.id, spec.name, tuple(names), status, task.line
    )
    new_callback = current.callback_url is None and spec.callback_url is not None
    return _Step(change, task, patch, pause, resume, new_callback)


def _check_resume(
    service: TaskService,
    task: Task,
    spec: TaskSpec,
    zone: str | None,
    patch: Mapping[str, Any],
    now: datetime,
) -> None:
    """What `TaskService.resume` checks, for a task the file enables again."""
    if patch.keys() & {"schedule", "timezone", "jitter"}:
        schedule = service.parse(spec.schedule, timezone=zone, jitter=spec.jitter, now=now)
    else:
        schedule = schedule_of(task)
    first = schedule.next_after(now)
    expires = patch.get("expires_at", task.expires_at)
    if first is None:
        raise Conflict(
            "enabled = true would resume a task with no fire after now; give it a new schedule",
        )
    if expires is not None and first > expires:
        raise Conflict("enabled = true would resume it past its expires_at; move expires_at")


def _check_new(service: TaskService, spec: TaskSpec, zone: str | None, now: datetime) -> None:
    """What `TaskService.create` checks against the current time, checked beforehand."""
    schedule = service.parse(spec.schedule, timezone=zone, jitter=spec.jitter, now=now)
    first = schedule.next_after(now)
    if first is None:
        raise InvalidSchedule("the schedule has no fire after now", field="schedule")
    if spec.expires_at is not None:
        if spec.expires_at <= now:
            raise InvalidInput("expires_at is in the past", field="expires_at")
        if first > spec.expires_at:
            raise InvalidInput(
                f"expires_at ({_iso(spec.expires_at)}) comes before the first fire "
                f"({_iso(first)}), so the task would never run",
                field="expires_at",
            )


def _diff(
    service: TaskService, task: Task, spec: TaskSpec, zone: str | None, now: datetime
) -> tuple[list[str], dict[str, Any]]:
    """The file fields in which `spec` differs from `task`, and the patch that applies them."""
    names: list[str] = []
    patch: dict[str, Any] = {}

    def differs(name: str, key: str, value: Any, same: bool) -> None:
        if not same:
            names.append(name)
            patch[key] = value

    differs("name", "name", spec.name, spec.name == task.name)
    for name, value in _schedule_diff(service, task, spec, zone, now):
        names.append(name)
        patch[name] = value
    action = spec.action.model_dump(mode="json")
    differs("action", "action", spec.action, action == task.action)
    retry_names = [
        _RETRY_KEYS[k]
        for k in RetryPolicy.model_fields
        if getattr(spec.retry, k) != getattr(task.retry, k)
    ]
    if retry_names:
        names.extend(retry_names)
        patch["retry"] = spec.retry
    differs("timeout", "timeout", spec.timeout, spec.timeout == _seconds(task.timeout_s))
    differs("overlap", "overlap", spec.overlap, spec.overlap == task.overlap)
    differs("max_queued", "max_queued", spec.max_queued, spec.max_queued == task.max_queued)
    differs("catchup", "catchup", spec.catchup, spec.catchup == task.catchup)
    differs(
        "catchup_window",
        "catchup_window",
        spec.catchup_window,
        spec.catchup_window == _seconds(task.catchup_window_s),
    )
    differs("max_runs", "max_runs", spec.max_runs, spec.max_runs == task.max_runs)
    differs("expires_at", "expires_at", spec.expires_at, spec.expires_at == task.expires_at)
    differs(
        "callback_url", "callback_url", spec.callback_url, spec.callback_url == task.callback_url
    )
    differs("metadata", "metadata", spec.metadata, spec.metadata == task.metadata)
    return names, patch


def _schedule_diff(
    service: TaskService, task: Task, spec: TaskSpec, zone: str | None, now: datetime
) -> list[tuple[str, Any]]:
    """("schedule" | "timezone" | "jitter", patch value) for each that differs."""
    stored = task.schedule
    stored_jitter = None if stored.get("jitter") is None else parse_duration(stored["jitter"])
    if (
        spec.schedule == _schedule_value(stored)
        and (zone or _mapping_zone(spec.schedule)) == task.timezone
        and spec.jitter == stored_jitter
    ):
        return []  # written as `export` writes it: equal without a look at the clock
    parsed = service.parse(spec.schedule, timezone=zone, jitter=spec.jitter, now=now)
    new = parsed.to_spec()
    if _is_relative(service, spec, zone, now, new):
        # "in 5m" or an interval without a start: the task already has its own anchor
        new = {**new, **{k: stored[k] for k in ("start", "at") if k in new and k in stored}}
    changed: list[tuple[str, Any]] = []
    if _core(new) != _core(stored):
        changed.append(("schedule", spec.schedule))
    if new.get("timezone") != stored.get("timezone"):
        changed.append(("timezone", new.get("timezone")))
    if new.get("jitter") != stored.get("jitter"):
        changed.append(("jitter", spec.jitter))
    return changed


def _is_relative(
    service: TaskService, spec: TaskSpec, zone: str | None, now: datetime, at_now: dict[str, Any]
) -> bool:
    """True when the schedule is written relative to the current time."""
    later = now + timedelta(hours=1)
    try:
        parsed = service.parse(spec.schedule, timezone=zone, jitter=spec.jitter, now=later)
    except InvalidInput:
        return False
    return parsed.to_spec() != at_now


def _core(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k not in ("timezone", "jitter")}


def _mapping_zone(schedule: object) -> str:
    if isinstance(schedule, Mapping) and isinstance(schedule.get("timezone"), str):
        return str(schedule["timezone"])
    return "UTC"


def _seconds(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


async def _check_limit(
    service: TaskService, owner: str, steps: Sequence[_Step], pruned: Sequence[Task]
) -> str | None:
    limit = service.engine.config.max_tasks_per_owner
    active = await service.engine.store.count_tasks(owner, active_only=True)
    for step in steps:
        created = step.change.op == "create" and step.task is not None and step.task.spec.active
        if created or step.resume:
            active += 1
        elif step.pause:
            active -= 1
    active -= sum(1 for t in pruned if t.status == TaskStatus.ACTIVE)
    if active > limit:
        return (
            f"applying it would leave {active} active tasks, more than the {limit} one owner "
            "may hold"
        )
    return None


async def _execute(service: TaskService, owner: str, step: _Step, source: str) -> TaskChange:
    change = step.change
    if change.op == "delete":
        await service.delete(owner, change.id)
        return change
    if change.op == "unchanged" or step.task is None:
        return change
    if change.op == "create":
        task, _ = await service.create(owner, step.task.spec, task_id=change.id)
    else:
        if step.pause:
            await service.pause(owner, change.id, f"disabled in {source}")
        if step.patch:
            await service.patch(owner, change.id, TaskPatch.model_validate(step.patch))
        if step.resume:
            await service.resume(owner, change.id)
        task = await service.get(owner, change.id)
    secret = await issue_callback_secret(service, task.id) if step.new_callback else None
    return TaskChange(
        change.op, task.id, task.name, change.fields, str(task.status), change.line, secret
    )


# --- writing a file ----------------------------------------------------------------------
def export_tasks(tasks: Iterable[Task], *, header: str | None = None) -> tuple[str, list[str]]:
    """The tasks (wakeups left out) as a task file that `apply` reads back unchanged, and
    warnings for values TOML cannot hold (JSON nulls inside metadata, bodies or contexts,
    which are left out)."""
    warnings: list[str] = []
    out: list[str] = []
    if header:
        out += [f"# {line}" if line else "#" for line in header.splitlines()]
        out.append("")
    for task in tasks:
        if task.kind != "task":
            continue
        out += _export_task(task, warnings)
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n", warnings


def _export_task(task: Task, warnings: list[str]) -> list[str]:
    writer = _TomlWriter(task.id, warnings)
    lines: list[str] = []
    if task.status in _ENDED:
        reason = f" ({task.end_reason})" if task.end_reason else ""
        lines.append(f"# {task.status}{reason}: this task will not run again")
    lines.append("[[tasks]]")
    stored = task.schedule
    entry: dict[str, Any] = {
        "id": task.id,
        "name": task.name,
        "schedule": _schedule_value(stored),
        "timezone": task.timezone,
    }
    if stored.get("jitter") is not None:
        entry["jitter"] = stored["jitter"]
    if task.status not in _ENDED:
        entry["enabled"] = task.status == TaskStatus.ACTIVE
    for key in ("max_runs", "expires_at", "callback_url"):
        if getattr(task, key) is not None:
            entry[key] = getattr(task, key)
    if task.metadata:
        entry["metadata"] = task.metadata
    lines += writer.pairs(entry, ())
    action = {k: v for k, v in task.action.items() if v is not None and v != {}}
    lines += ["", "[tasks.action]", *writer.pairs(action, ("action",))]
    retry = task.retry
    execution: dict[str, Any] = {}
    if task.timeout_s is not None:
        execution["timeout"] = format_duration(timedelta(seconds=task.timeout_s))
    execution["retries"] = retry.attempts - 1
    execution["retry_delay"] = format_duration(retry.delay)
    defaults = RetryPolicy()
    if retry.backoff != defaults.backoff:
        execution["retry_backoff"] = retry.backoff
    if retry.max_delay != defaults.max_delay:
        execution["retry_max_delay"] = format_duration(retry.max_delay)
    if retry.jitter != defaults.jitter:
        execution["retry_jitter"] = retry.jitter
    execution["overlap"] = str(task.overlap)
    if task.max_queued != 1:
        execution["max_queued"] = task.max_queued
    execution["catchup"] = str(task.catchup)
    execution["catchup_window"] = format_duration(timedelta(seconds=task.catchup_window_s))
    lines += ["", "[tasks.execution]", *writer.pairs(execution, ("execution",))]
    return lines


def _schedule_value(stored: Mapping[str, Any]) -> str | dict[str, Any]:
    """A stored schedule as a file writes it (its zone and jitter are keys of their own):
    cron and once as text, interval and daily as a table."""
    kind = stored.get("type")
    if kind == "cron":
        return str(stored["expression"])
    if kind == "once":
        return _iso(datetime.fromisoformat(stored["at"]))
    value = _core(stored)
    if kind == "interval":
        value["start"] = datetime.fromisoformat(value["start"]).astimezone(UTC)
    return value


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class _TomlWriter:
    """Just enough TOML for task files: scalars, dates, arrays and inline tables."""

    _BARE = re.compile(r"[A-Za-z0-9_-]+")

    def __init__(self, task_id: str, warnings: list[str]) -> None:
        self.task_id = task_id
        self.warnings = warnings

    def pairs(self, table: Mapping[str, Any], path: tuple[str, ...]) -> list[str]:
        lines = []
        for key, value in table.items():
            text = self.value(value, (*path, key))
            if text is not None:
                lines.append(f"{self.key(key)} = {text}")
        return lines

    def key(self, key: str) -> str:
        return key if self._BARE.fullmatch(key) else self.string(key)

    def value(self, value: Any, path: tuple[str, ...]) -> str | None:
        if value is None:
            self.warnings.append(
                f"task {self.task_id!r}: {'.'.join(path)} is null, which TOML cannot hold; "
                "it was left out"
            )
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            if math.isnan(value):
                return "nan"
            if math.isinf(value):
                return "inf" if value > 0 else "-inf"
            return repr(value)
        if isinstance(value, str):
            return self.string(value)
        if isinstance(value, datetime):
            return _iso(value) if value.tzinfo is not None else value.isoformat()
        if isinstance(value, list | tuple):
            shown = [self.value(v, (*path, str(i))) for i, v in enumerate(value)]
            return "[" + ", ".join(item for item in shown if item is not None) + "]"
        if isinstance(value, Mapping):
            pairs = [
                f"{self.key(str(k))} = {text}"
                for k, v in value.items()
                if (text := self.value(v, (*path, str(k)))) is not None
            ]
            return "{ " + ", ".join(pairs) + " }" if pairs else "{}"
        return self.string(str(value))

    @staticmethod
    def string(text: str) -> str:
        out = ['"']
        for char in text:
            if char == '"':
                out.append('\\"')
            elif char == "\\":
                out.append("\\\\")
            elif char == "\n":
                out.append("\\n")
            elif char == "\t":
                out.append("\\t")
            elif char == "\r":
                out.append("\\r")
            elif ord(char) < 0x20 or ord(char) == 0x7F:
                out.append(f"\\u{ord(char):04x}")
            else:
                out.append(char)
        out.append('"')
        return "".join(out)
