"""The argument types the tools share (schedules, durations, zones, bounded numbers) and the
wrapper that turns expected failures into tool errors.

These types validate every call on the server (first in `refusals.check_arguments`, then in
the SDK); what the model reads is the hand-shaped schema of `published.py`, held to them by a
test. Numbers are strict: `true` is not 1 and `"5"` is not 5."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Annotated, Any, ParamSpec, TypeVar

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field, ValidationError

from wakecall.errors import WakecallError
from wakecall.models import MAX_PAUSE_AFTER_FAILURES, MAX_RUNS, invalid_input_from
from wakecall.schedules import MAX_DURATION_SECONDS
from wakecall.server.tools.published import MAX_CURSOR, MAX_WAIT_SECONDS

__all__ = [
    "DurationArg",
    "EventCursor",
    "EventLimit",
    "MaxQueued",
    "MaxRuns",
    "PageCursor",
    "PageLimit",
    "PauseAfterFailures",
    "PreviewCount",
    "ScheduleArg",
    "WaitSeconds",
    "ZoneArg",
    "tool_errors",
]

P = ParamSpec("P")
R = TypeVar("R")

#: Text, or an object with a `type` (cron, interval, once, daily, on_demand) that the schedule
#: parser reads, with a message naming any key it does not know.
ScheduleArg = str | dict[str, Any]
Seconds = Annotated[float, Field(strict=True, ge=0, le=MAX_DURATION_SECONDS)]
#: "30s", "5m", "1h30m", or a number of seconds (read by `parse_duration`).
DurationArg = str | Seconds
ZoneArg = str
PageCursor = str | None
PageLimit = Annotated[int, Field(strict=True, ge=1, le=100)]
MaxRuns = Annotated[int, Field(strict=True, ge=1, le=MAX_RUNS)]
MaxQueued = Annotated[int, Field(strict=True, ge=1, le=100)]
PauseAfterFailures = Annotated[int, Field(strict=True, ge=0, le=MAX_PAUSE_AFTER_FAILURES)]
EventCursor = Annotated[int, Field(strict=True, ge=0, le=MAX_CURSOR)]
EventLimit = Annotated[int, Field(strict=True, ge=1, le=500)]
WaitSeconds = Annotated[float, Field(strict=True, ge=0, le=MAX_WAIT_SECONDS)]
PreviewCount = Annotated[int, Field(strict=True, ge=1, le=50)]


def tool_errors(tool: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn expected failures into tool errors with their message."""

    @wraps(tool)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        for keyword in ("in", "from"):  # the SDK passes arguments by their alias
            if keyword in kwargs:
                kwargs[keyword + "_"] = kwargs.pop(keyword)
        try:
            return await tool(*args, **kwargs)
        except ValidationError as exc:
            raise ToolError(str(invalid_input_from(exc))) from exc
        except WakecallError as exc:
            raise ToolError(str(exc)) from exc

    return wrapper
