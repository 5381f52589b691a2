"""The tools on time: wake me later, cancel that, and what a schedule would do."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AwareDatetime, Field

from wakecall.engine.checks import parse_for
from wakecall.schedules import preview
from wakecall.server.call_trace import call_trace
from wakecall.server.tools.args import (
    DurationArg,
    PreviewCount,
    ScheduleArg,
    ZoneArg,
    tool_errors,
)
from wakecall.server.tools.group import ToolGroup
from wakecall.server.views import DeleteResult, FireTime, PreviewView, WakeupView

if TYPE_CHECKING:
    pass

__all__ = ["WakeupTools"]


class WakeupTools(ToolGroup):
    @tool_errors
    async def schedule_wakeup(
        self,
        in_: Annotated[DurationArg | None, Field(alias="in")] = None,
        at: AwareDatetime | None = None,
        reason: Annotated[str, Field(max_length=2000)] = "",
        context: Any = None,
        dedupe_key: str | None = None,
    ) -> WakeupView:
        owner = self.rt.owner()
        receipt = await self.rt.tasks.schedule_wakeup(
            owner,
            delay=in_,
            at=at,
            reason=reason,
            context=context,
            dedupe_key=dedupe_key,
            trace=call_trace(),
        )
        if receipt.created:
            self.rt.pusher.changed(owner, receipt.task.id)
        view = WakeupView(
            wakeup_id=receipt.task.id,
            scheduled_for=receipt.scheduled_for,
            scheduled_for_local=receipt.scheduled_for,
            timezone=receipt.task.timezone,
            clamped=receipt.clamped,
            requested_for=receipt.requested,
            reason=reason,
            created=receipt.created,
            note=_moved_note(receipt.requested, receipt.scheduled_for) if receipt.clamped else None,
        )
        return await self.hinted(owner, view)

    @tool_errors
    async def cancel_wakeup(self, wakeup_id: str) -> DeleteResult:
        owner = self.rt.owner()
        await self.rt.tasks.cancel_wakeup(owner, wakeup_id)
        self.rt.pusher.changed(owner, wakeup_id)
        return await self.hinted(owner, DeleteResult(deleted=True, id=wakeup_id))

    @tool_errors
    async def preview_schedule(
        self,
        schedule: ScheduleArg,
        timezone: ZoneArg | None = None,
        count: PreviewCount = 5,
        jitter: DurationArg | None = None,
    ) -> PreviewView:
        tasks = self.rt.tasks
        now = tasks.now()
        parsed = parse_for(
            schedule,
            timezone=timezone,
            jitter=jitter,
            now=now,
            config=tasks.config,
        )
        shown = preview(parsed, count=count, after=now)
        return PreviewView(
            description=shown.description,
            timezone=shown.timezone,
            fires=[FireTime(local=f.local, utc=f.utc) for f in shown.fires],
        )


def _moved_note(requested: datetime, scheduled: datetime) -> str:
    """What the answer says when the server moved a wakeup into its bounds."""
    which = "earliest" if scheduled > requested else "latest"
    return (
        f"moved to {scheduled.isoformat()}, the {which} time this server allows for a wakeup "
        f"(you asked for {requested.isoformat()})"
    )
