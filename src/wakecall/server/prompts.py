"""Prompts that hosts show as commands, for the loops wakecall exists for (follow up on
something later; watch a condition until it holds, then stop; a recurring report that adapts
its cadence; review a task), and the completion of their arguments and of the resource
templates' `task_id`.

Each prompt is a message that tells the model which tools to call and what to do when it is
woken; it changes nothing by itself. Completions offer IANA time zones, durations, and the
caller's own task ids (never another owner's).
"""

from __future__ import annotations

import json
import math
import zoneinfo
from collections.abc import Callable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server import MCPServer
from mcp.types import Completion, PromptReference, ResourceTemplateReference
from pydantic import Field

from wakecall.errors import InvalidInput

if TYPE_CHECKING:
    from wakecall.engine import TaskService

__all__ = ["register_prompts", "register_task_completions"]

#: At most this many values in one completion (the protocol's limit).
MAX_VALUES = 100
#: Task ids looked through for one completion, at most.
MAX_SCANNED = 2000
_DURATIONS = ("5m", "10m", "15m", "30m", "1h", "2h", "6h", "12h", "1d", "7d")


async def follow_up(
    what: Annotated[str, Field(description="what to follow up on")],
    when: Annotated[str, Field(description="a delay such as '2h', or an ISO-8601 instant")],
    context: Annotated[str, Field(description="anything to have back then")] = "",
) -> str:
    """Have wakecall wake you later to follow up on something."""
    key = "at" if when[:1].isdigit() and "-" in when else "in"
    call: dict[str, Any] = {key: when, "reason": f"follow up: {what}"}
    if context:
        call["context"] = {"note": context}
    return (
        f"Follow up on {what} ({key} {when}). Call schedule_wakeup with {_json(call)}. When "
        "the wakeup arrives (a wakeup.fired event from get_events, or a push), it carries that "
        "reason and context back: check on it, tell me what you found, and schedule another "
        "wakeup only if it still needs watching."
    )


async def watch_until(
    condition: Annotated[str, Field(description="what must become true")],
    every: Annotated[str, Field(description="how often to check, e.g. '10m'")] = "10m",
    give_up_after: Annotated[str, Field(description="stop checking after, e.g. '1d'")] = "1d",
) -> str:
    """Check a condition on a schedule until it holds, then stop."""
    runs = _checks(every, give_up_after)
    call = {
        "name": f"watch: {condition[:80]}",
        "schedule": f"@every {every}",
        "action": {"type": "wakeup", "reason": f"check whether {condition}"},
        "max_runs": runs,
    }
    return (
        f"Watch until this holds: {condition}. Call create_task with {_json(call)}. Each time "
        "you are woken (get_events), check the condition. When it holds, delete the task and "
        "tell me; until then do nothing more. If the task expires (a task.expired event, "
        f"after {runs} checks), tell me it never held."
    )


async def adaptive_report(
    topic: Annotated[str, Field(description="what the report is about")],
    schedule: Annotated[str, Field(description="when to start reporting")] = "0 9 * * MON-FRI",
    timezone: Annotated[str, Field(description="IANA time zone, e.g. 'Europe/Paris'")] = "UTC",
) -> str:
    """A recurring report that adapts its cadence to what it finds."""
    call = {
        "name": f"report: {topic[:80]}",
        "schedule": schedule,
        "timezone": timezone,
        "action": {"type": "wakeup", "reason": f"report on {topic}"},
    }
    return (
        f"Report on {topic} regularly. Call create_task with {_json(call)}. Each time you are "
        "woken (get_events), gather what changed and report it. Then adapt the cadence with "
        "patch_schedule: after three reports with little news, report less often (daily "
        "becomes weekly); when much is happening, more often (never more than hourly). Say "
        "when you change it, and pause the task when I say stop."
    )


async def review_task(
    task_id: Annotated[str, Field(description="the id of one of your tasks")],
) -> str:
    """Review how a task is doing and propose changes."""
    return (
        f"Review the task {task_id}: read it with get_task, its recent runs with list_runs "
        '(then {"status": "failure"} for its failures) and its unread events with get_events. '
        "Tell me how it is doing (next fires in its zone, what failed and why) and propose "
        "changes as patch_schedule arguments, without applying them until I agree."
    )


PROMPTS: tuple[tuple[Callable[..., Any], str], ...] = (
    (follow_up, "Follow up later"),
    (watch_until, "Watch until it holds"),
    (adaptive_report, "A report that adapts its cadence"),
    (review_task, "Review a task"),
)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _checks(every: str, give_up_after: str) -> int:
    """How many checks `every` fit in `give_up_after` (at least 1)."""
    # lazy: start-up time (the prompts are registered before the handshake is answered)
    from wakecall.schedules import parse_duration

    step = parse_duration(every, field="every")
    span = parse_duration(give_up_after, field="give_up_after")
    if not step:
        raise InvalidInput("must be longer than zero", field="every", example='"10m"')
    return max(1, math.ceil(span / step))


def register_prompts(mcp: MCPServer[Any], owner: Callable[[], str]) -> None:
    """Add the prompts, and completions of their arguments (task ids wait for
    `register_task_completions`: the server declares completions with the handshake, before
    the runtime exists)."""
    for fn, title in PROMPTS:
        mcp.prompt(name=fn.__name__, title=title)(fn)
    mcp.completion()(Completions(owner, None).complete)


def register_task_completions(
    mcp: MCPServer[Any], owner: Callable[[], str], tasks: TaskService
) -> None:
    """Complete task ids too, from `tasks` (the caller's own only)."""
    mcp.completion()(Completions(owner, tasks).complete)


class Completions:
    """The values `completion/complete` offers for an argument of a prompt or a resource
    template; task ids only when it has the task service."""

    def __init__(self, owner: Callable[[], str], tasks: TaskService | None) -> None:
        self.owner = owner
        self.tasks = tasks

    async def complete(self, ref: Any, argument: Any, context: Any) -> Completion:
        name, value = argument.name, argument.value or ""
        if name == "task_id" and isinstance(ref, ResourceTemplateReference | PromptReference):
            return await self._task_ids(value)
        if isinstance(ref, PromptReference) and name == "timezone":
            return _completion(_zones_for(value))
        if isinstance(ref, PromptReference) and name in ("every", "give_up_after", "when"):
            return _completion([d for d in _DURATIONS if d.startswith(value)])
        return _completion([])

    async def _task_ids(self, start: str) -> Completion:
        if self.tasks is None:
            return _completion([])
        owner, found, after, scanned = self.owner(), list[str](), None, 0
        while scanned < MAX_SCANNED:
            page = await self.tasks.list_tasks(owner, after=after, limit=500)
            found += [task.id for task in page if task.id.startswith(start)]
            scanned += len(page)
            if len(page) < 500:
                return _completion(found)
            after = page[-1].id
        return Completion(values=found[:MAX_VALUES], total=None, has_more=True)


def _completion(values: Sequence[str]) -> Completion:
    return Completion(
        values=list(values[:MAX_VALUES]), total=len(values), has_more=len(values) > MAX_VALUES
    )


def _zones_for(start: str) -> list[str]:
    """Zones whose name, or a part of it after a '/', starts with `start` (any case): names
    that start with it first."""
    lowered = start.lower()
    zones = _zones()
    first = [zone for zone in zones if zone.lower().startswith(lowered)]
    then = [
        zone
        for zone in zones
        if not zone.lower().startswith(lowered)
        and any(part.lower().startswith(lowered) for part in zone.split("/")[1:])
    ]
    return first + then


@cache
def _zones() -> tuple[str, ...]:
    names = {zone for zone in zoneinfo.available_timezones() if not zone.startswith("Etc/")}
    return tuple(sorted(names | {"UTC"}))
