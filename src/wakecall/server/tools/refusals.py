"""Checking a tool call's arguments before the tool runs, and saying in our words what is wrong.

A call is checked twice before any tool code runs: against the schema the tool publishes
(`published.py`: names, types, choices, ranges, required fields, unknown fields) and then with
the tool's own pydantic parameters (what a schema does not say: instants, URLs, headers,
durations). Every problem becomes one line in the house style, "field: problem. Example:
value", naming the closest valid argument for an unknown one, with examples computed from the
current time. No library's words reach the model.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from wakecall.errors import InvalidInput
from wakecall.server.tools.examples import call_example, value_example
from wakecall.server.tools.published import resolved_schema

__all__ = ["ArgumentCheck", "resolved_schema"]

Path = tuple[str | int, ...]

#: Unknown arguments that models are known to try, with what to do instead.
_INSTEAD = {
    ("schedule_wakeup", "timezone"): (
        "a wakeup has no time zone: give 'at' with the UTC offset you mean, or a delay as 'in'"
    ),
    ("schedule_wakeup", "task_id"): (
        "a wakeup wakes you; to run a task at another time use patch_schedule or run_now"
    ),
    ("preview_schedule", "task_id"): (
        "preview_schedule previews a schedule you give; get_task shows a task's next fires"
    ),
}
_FIELD_PREFIX = re.compile(r"^[\w\[\].'-]+: ")


@dataclass(frozen=True)
class Problem:
    path: Path
    text: str
    example: str | None = None
    #: The field whose example fits best (default: the last name in `path`).
    example_of: str | None = None

    @property
    def leaf(self) -> str:
        if self.example_of is not None:
            return self.example_of
        names = [part for part in self.path if isinstance(part, str)]
        return names[-1] if names else ""


class ArgumentCheck:
    """The check of one tool's arguments: call it with the arguments as received; it returns
    what to pass on (optional arguments given as null are left out, as if not given) or raises
    `InvalidInput` with every problem found."""

    def __init__(self, tool: str, model: type[BaseModel], now: Callable[[], datetime]):
        self.tool = tool
        self.model = model
        self.now = now
        self.schema = resolved_schema(tool)

    def __call__(self, arguments: object) -> dict[str, Any]:
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise InvalidInput(
                f"the arguments of {self.tool} must be an object, got {_shown(arguments)}",
                example=call_example(self.tool, self.now()),
            )
        required = set(self.schema.get("required", ()))
        given = {k: v for k, v in arguments.items() if v is not None or k in required}
        problems = list(self._against_schema(given))
        if not problems:
            try:
                self.model.model_validate(given)
            except ValidationError as exc:
                problems = [self._from_pydantic(item) for item in exc.errors(include_url=False)]
        if problems:
            raise InvalidInput("\n".join(self._line(p) for p in _unique(problems)))
        return given

    # --- the published schema ---------------------------------------------------------------
    def _against_schema(self, given: dict[str, Any]) -> Iterator[Problem]:
        properties = self.schema["properties"]
        for name in self.schema.get("required", ()):
            if given.get(name) is None:
                yield Problem((name,), "is required")
        for name, value in given.items():
            if name in properties:
                yield from _problems(properties[name], value, (name,))
            else:
                yield self._unknown_argument(name, list(properties))

    def _unknown_argument(self, name: str, valid: list[str]) -> Problem:
        instead = _INSTEAD.get((self.tool, name))
        closest = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
        text = f"{self.tool} has no argument {name!r}"
        if instead:
            text += f"; {instead}."
        elif closest:
            text += f"; did you mean {closest[0]!r}?"
        else:
            text += "."
        text += f" It takes: {', '.join(valid)}"
        return Problem((name,), text, call_example(self.tool, self.now()))

    # --- the pydantic parameters --------------------------------------------------------------
    def _from_pydantic(self, item: Any) -> Problem:
        path = _path_in(self.schema, tuple(item["loc"]))
        kind = item["type"]
        if kind == "missing":
            return Problem(path, "is required")
        if kind in ("value_error", "assertion_error"):
            error = (item.get("ctx") or {}).get("error")
            text = str(error) if error is not None else str(item["msg"])
            text = _FIELD_PREFIX.sub("", text.removeprefix("Value error, "), count=1)
            text, _, example = text.partition(". Example: ")
            return Problem(path, text, example or None)
        shown = _shown(item.get("input"))
        if kind.startswith(("datetime", "timezone")):
            return Problem(path, f"must be an ISO-8601 instant with a UTC offset, got {shown}")
        if kind == "extra_forbidden":
            return Problem(path, "is not a field here")
        message = str(item["msg"]).replace("Input should be ", "must be ")
        return Problem(path, f"{message[:1].lower()}{message[1:]}, got {shown}")

    def _line(self, problem: Problem) -> str:
        where = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in problem.path
        ).lstrip(".")
        example = problem.example or value_example(self.tool, problem.leaf, self.now())
        if example is None:
            example = call_example(self.tool, self.now())
        text = problem.text if problem.text.endswith((".", "?")) else f"{problem.text}."
        return f"{where or 'arguments'}: {text} Example: {example}"


def _problems(node: Mapping[str, Any], value: Any, path: Path) -> Iterator[Problem]:
    """What is wrong with `value` under the schema `node` (the keywords `published.py` uses)."""
    branches = node.get("anyOf")
    if branches is not None and all(any(_problems(b, value, path)) for b in branches):
        yield Problem(path, f"must be {_expected(node)}, got {_shown(value)}")
        return
    kinds = node.get("type")
    if kinds is not None:
        allowed = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(kind, value) for kind in allowed):
            yield Problem(path, f"must be {_expected(node)}, got {_shown(value)}")
            return
    if "enum" in node and value not in node["enum"]:
        text = f"must be {_expected(node)}, got {_shown(value)}"
        if isinstance(value, str):
            closest = difflib.get_close_matches(value, node["enum"], n=1, cutoff=0.6)
            if closest:
                text += f"; did you mean {closest[0]!r}?"
        yield Problem(path, text)
        return
    if _is("number", value) and not _in_range(node, value):
        yield Problem(path, f"must be {_expected(node)}, got {_shown(value)}")
    if isinstance(value, str):
        if len(value) > node.get("maxLength", len(value)):
            yield Problem(path, f"is {len(value)} characters long; at most {node['maxLength']}")
        if len(value) < node.get("minLength", 0):
            yield Problem(path, "must not be empty")
    if isinstance(value, list):
        yield from _list_problems(node, value, path)
    if isinstance(value, dict):
        yield from _object_problems(node, value, path)


def _list_problems(node: Mapping[str, Any], value: list[Any], path: Path) -> Iterator[Problem]:
    if len(value) > node.get("maxItems", len(value)):
        yield Problem(path, f"has {len(value)} items; at most {node['maxItems']}")
    if len(value) < node.get("minItems", 0):
        yield Problem(path, f"needs at least {node['minItems']} item")
    items = node.get("items")
    if isinstance(items, dict):
        for index, item in enumerate(value):
            yield from _problems(items, item, (*path, index))


def _object_problems(
    node: Mapping[str, Any], value: dict[str, Any], path: Path
) -> Iterator[Problem]:
    properties: dict[str, Any] = node.get("properties", {})
    for name in node.get("required", ()):
        if name not in value:
            yield Problem((*path, name), "is required")
    extra = node.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            yield from _problems(properties[key], item, (*path, key))
        elif extra is False:
            closest = difflib.get_close_matches(key, list(properties), n=1, cutoff=0.6)
            hint = f"did you mean {closest[0]!r}?" if closest else "it is not a field here."
            yield Problem(
                (*path, key),
                f"unknown field; {hint} It takes: {', '.join(properties)}",
                example_of=str(path[-1]) if path else None,
            )
        elif isinstance(extra, dict):
            yield from _problems(extra, item, (*path, key))


def _is(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    return value is None


def _in_range(node: Mapping[str, Any], value: float) -> bool:
    if "minimum" in node and value < node["minimum"]:
        return False
    if "exclusiveMinimum" in node and value <= node["exclusiveMinimum"]:
        return False
    return not ("maximum" in node and value > node["maximum"])


def _expected(node: Mapping[str, Any]) -> str:
    """What a value under `node` must be, in words."""
    if "enum" in node:
        return "one of " + ", ".join(json.dumps(choice) for choice in node["enum"])
    branches = node.get("anyOf", [])
    numbers = [b for b in branches if b.get("type") == "number"]
    if numbers and {b.get("type") for b in branches} == {"string", "number"}:
        return (
            'a duration such as "30s", "5m" or "1h30m", or a number of seconds up to '
            f"{numbers[0]['maximum']:,} (100 years)"
        )
    if branches:
        return " or ".join(_expected(branch) for branch in branches)
    kinds = node.get("type")
    allowed = [kinds] if isinstance(kinds, str) else list(kinds or [])
    words = {
        "string": "text",
        "boolean": "true or false",
        "object": "an object",
        "array": "a list",
        "null": "null",
    }
    parts = []
    for kind in allowed:
        if kind in ("integer", "number"):
            parts.append(("a whole number" if kind == "integer" else "a number") + _range(node))
        else:
            parts.append(words.get(kind, kind))
    return " or ".join(parts)


def _range(node: Mapping[str, Any]) -> str:
    high = node.get("maximum")
    if "exclusiveMinimum" in node:
        return f" above {node['exclusiveMinimum']} and at most {high}"
    if "minimum" in node and high is not None:
        return f" from {node['minimum']} to {high}"
    return ""


def _path_in(schema: Mapping[str, Any], loc: tuple[Any, ...]) -> Path:
    """A pydantic error location as a path of the published schema: the names of union
    branches ('webhook', 'function-after[...]') that pydantic puts in it are left out."""
    node: Any = schema
    path: list[str | int] = []
    for part in loc:
        properties = node.get("properties") if isinstance(node, dict) else None
        extra = node.get("additionalProperties") if isinstance(node, dict) else None
        if isinstance(part, int) and isinstance(node, dict) and isinstance(node.get("items"), dict):
            path.append(part)
            node = node["items"]
        elif properties is not None:
            if part in properties:
                path.append(part)
                node = properties[part]
        elif isinstance(extra, dict):
            path.append(part)
            node = extra
    return tuple(path)


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}…"


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[Path, str]] = set()
    out = []
    for problem in problems:
        if (problem.path, problem.text) not in seen:
            seen.add((problem.path, problem.text))
            out.append(problem)
    return out
