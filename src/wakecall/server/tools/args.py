"""The argument types the tools share (a schedule in its structured forms, durations, zones)
and the wrapper that turns expected failures into tool errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import wraps
from typing import Annotated, Any, Literal, ParamSpec, TypeVar

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wakecall.errors import WakecallError
from wakecall.models import invalid_input_from

__all__ = [
    "CronIn",
    "DailyIn",
    "DurationArg",
    "IntervalIn",
    "OnceIn",
    "PageCursor",
    "PageLimit",
    "ScheduleArg",
    "ZoneArg",
    "schedule_value",
    "tool_errors",
]

P = ParamSpec("P")
R = TypeVar("R")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CronIn(_In):
    type: Literal["cron"] = "cron"
    expression: str = Field(description="5 fields, or 6 with seconds first: '0 9 * * MON-FRI'")


class IntervalIn(_In):
    type: Literal["interval"] = "interval"
    every: str = Field(description="e.g. '30m', '1h30m'")
    start: datetime | None = Field(None, description="anchor instant; default: now")


class OnceIn(_In):
    type: Literal["once"] = "once"
    at: datetime | None = Field(None, description="ISO-8601 instant with offset")
    in_: str | None = Field(None, alias="in", description="or a delay such as '5m'")


class DailyIn(_In):
    type: Literal["daily"] = "daily"
    times: list[str] = Field(description="local times, e.g. ['09:00', '17:30']")
    weekdays: list[str] | None = Field(None, description="e.g. ['MON', 'FRI']; default every day")


ScheduleArg = Annotated[
    str | CronIn | IntervalIn | OnceIn | DailyIn,
    Field(
        description=(
            "A string: cron '0 9 * * MON-FRI', '@daily', '@every 30m', 'in 5m', an ISO-8601 "
            "instant, an RFC 5545 rule 'RRULE:FREQ=WEEKLY;BYDAY=MO;BYHOUR=9', or 'on demand' "
            "(no clock fires: run_now, inbound events, depends_on); or "
            'an object such as {"type": "daily", "times": ["09:00"]}'
        )
    ),
]
DurationArg = str | float
ZoneArg = Annotated[str, Field(description="IANA time zone, e.g. 'Europe/Paris'")]
PageCursor = Annotated[str | None, Field(description="next_cursor of the previous page")]
PageLimit = Annotated[int, Field(ge=1, le=100)]


def schedule_value(value: str | BaseModel) -> str | dict[str, Any]:
    """A schedule argument as `parse_schedule` takes it."""
    if isinstance(value, str):
        return value
    return value.model_dump(mode="json", by_alias=True, exclude_none=True)


def tool_errors(tool: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn expected failures into tool errors with their message."""

    @wraps(tool)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if "in" in kwargs:  # the SDK passes arguments by their alias; `in` is a keyword
            kwargs["in_"] = kwargs.pop("in")
        try:
            return await tool(*args, **kwargs)
        except ValidationError as exc:
            raise ToolError(str(invalid_input_from(exc))) from exc
        except WakecallError as exc:
            raise ToolError(str(exc)) from exc

    return wrapper
