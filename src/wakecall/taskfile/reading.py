"""Reading a task file: TOML syntax, the keys it uses, each task's fields (the same checks as
`create_task`, except those that need the store or the current time) and ids used twice, with
every problem reported at its line."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import rtoml
from pydantic import ValidationError

from wakecall.engine.checks import TASK_ID_PATTERN
from wakecall.errors import InvalidInput
from wakecall.models import TaskSpec
from wakecall.taskfile.format import (
    EXECUTION_KEYS,
    MAX_RETRIES,
    RETRY_KEYS,
    TASK_KEYS,
    file_path,
    iso,
    jsonable,
)

__all__ = [
    "FileTask",
    "Problems",
    "TaskFileError",
    "load_task_file",
    "nearest_line",
    "parse_task_file",
    "read_file",
]


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
    #: Line of its `[[tasks]]` header.
    line: int | None = None


def nearest_line(lines: Mapping[tuple[str, ...], int], path: tuple[str, ...]) -> int | None:
    """The line of `path`, or of the nearest enclosing key or table written."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


class Problems:
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
    tasks, problems = read_file(path)
    problems.raise_if_any()
    return tasks


def read_file(path: str | Path) -> tuple[list[FileTask], Problems]:
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


def _read_text(text: str, source: str) -> tuple[list[FileTask], Problems]:
    """The tasks that passed their checks, and the problems of the others."""
    problems = Problems(source)
    try:
        data = _parse_toml(text)
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
    lines = _FileLines(text)
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
    headers = lines.headers(len(raw_tasks))
    for index, entry in enumerate(raw_tasks):
        key_lines = lines.block(index)
        task = _read_entry(entry, index, key_lines, headers[index], problems)
        if task is None:
            continue
        if task.id in seen:
            problems.add(
                f"id {task.id!r} is used twice (first by task #{seen[task.id] + 1}); "
                "ids must be unique within a file",
                line=nearest_line(key_lines, ("id",)),
                task_id=task.id,
            )
            continue
        seen[task.id] = index
        tasks.append(task)
    return tasks, problems


def _read_entry(
    entry: object,
    index: int,
    key_lines: Mapping[tuple[str, ...], int],
    header_line: int | None,
    problems: Problems,
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
            line=nearest_line(key_lines, ("id",)),
            index=index,
        )
        task_id = None

    found = False

    def problem(message: str, path: tuple[str, ...]) -> None:
        nonlocal found
        found = True
        problems.add(message, line=nearest_line(key_lines, path), task_id=task_id, index=index)

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
            path = file_path(tuple(item["loc"]))
            message = item["msg"].removeprefix("Value error, ")
            problem(f"{'.'.join(path) or 'task'}: {message}", path)
        return None
    if found or task_id is None:
        return None
    return FileTask(task_id, spec, index, key_lines, header_line)


def _spec_fields(
    entry: dict[str, Any], task_id: str, execution: dict[str, Any], retries: int
) -> dict[str, Any]:
    name = entry.get("name", task_id)
    fields: dict[str, Any] = {"name": name}
    schedule = entry.get("schedule")
    if isinstance(schedule, datetime):  # a TOML date-time: an instant (local: in the zone)
        schedule = iso(schedule) if schedule.tzinfo is not None else schedule.isoformat()
    fields["schedule"] = schedule
    for key in ("timezone", "jitter", "max_runs", "expires_at", "callback_url", "depends_on"):
        if key in entry:
            fields[key] = entry[key]
    for key in ("trigger", "condition", "concurrency", "rate_limit"):
        if key in entry:
            fields[key] = jsonable(entry[key])
    if "enabled" in entry:
        fields["active"] = entry["enabled"]
    if "metadata" in entry:
        fields["metadata"] = jsonable(entry["metadata"])
    action = entry.get("action")
    fields["action"] = {"type": "wakeup", "reason": name} if action is None else jsonable(action)
    for key in (
        "timeout",
        "overlap",
        "max_queued",
        "catchup",
        "catchup_window",
        "pause_after_failures",
    ):
        if key in execution:
            fields[key] = execution[key]
    retry: dict[str, Any] = {"attempts": retries + 1}
    for policy_key, file_key in RETRY_KEYS.items():
        if file_key in execution and policy_key != "attempts":
            retry[policy_key] = execution[file_key]
    fields["retry"] = retry
    return fields


def _parse_toml(text: str) -> dict[str, Any]:
    """The document: parsed in native code, and by `tomllib` when that refuses it, so that a
    refusal carries `tomllib`'s message and position (`TOMLDecodeError`)."""
    try:
        return dict(rtoml.loads(text))
    except rtoml.TomlParsingError:
        return tomllib.loads(text)


class _FileLines:
    """Where a file's tasks and keys are written. The lines of every key are only needed to
    report a problem, and scanning for them costs more than parsing the file, so they are
    found when first asked for; each task's `[[tasks]]` header line, which every report
    names, is found by one search of the text."""

    _TASK_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*tasks[ \t]*\]\][ \t]*(?:#.*)?$", re.MULTILINE)

    def __init__(self, text: str) -> None:
        self._text = text
        self._finder: _LineFinder | None = None

    @property
    def finder(self) -> _LineFinder:
        if self._finder is None:
            self._finder = _LineFinder(self._text)
        return self._finder

    @property
    def top(self) -> Mapping[str, int]:
        return self.finder.top

    def block(self, index: int) -> Mapping[tuple[str, ...], int]:
        return _BlockLines(self, index)

    def headers(self, count: int) -> list[int | None]:
        """The header line of each of `count` tasks. The quick search is trusted only when
        no multi-line string could hide or fake a header and it found one per task."""
        text = self._text
        if '"""' not in text and "'''" not in text:
            found: list[int | None] = []
            line, position = 1, 0
            for match in self._TASK_HEADER.finditer(text):
                line += text.count("\n", position, match.start())
                position = match.start()
                found.append(line)
            if len(found) == count:
                return found
        return [self.finder.block(index).get(()) for index in range(count)]


class _BlockLines(Mapping[tuple[str, ...], int]):
    """The key lines of one task, scanned for on first use."""

    def __init__(self, lines: _FileLines, index: int) -> None:
        self._lines = lines
        self._index = index

    def _block(self) -> dict[tuple[str, ...], int]:
        return self._lines.finder.block(self._index)

    def __getitem__(self, path: tuple[str, ...]) -> int:
        return self._block()[path]

    def __iter__(self) -> Iterator[tuple[str, ...]]:
        return iter(self._block())

    def __len__(self) -> int:
        return len(self._block())


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
