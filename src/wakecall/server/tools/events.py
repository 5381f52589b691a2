"""The tools on what happened: runs, events and callback deliveries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from wakecall.models import DeliveryStatus, RunStatus
from wakecall.server.tools.args import (
    EventCursor,
    EventLimit,
    PageCursor,
    PageLimit,
    WaitSeconds,
    tool_errors,
)
from wakecall.server.tools.group import ToolGroup, one_page
from wakecall.server.views import (
    DeliveryPage,
    DeliveryView,
    EventPage,
    RunPage,
    delivery_view,
    event_view,
    run_view,
)

if TYPE_CHECKING:
    pass

__all__ = ["EventTools"]

RunStatusArg = Literal[
    "queued", "running", "success", "failure", "timeout", "cancelled", "skipped", "missed"
]


class EventTools(ToolGroup):
    @tool_errors
    async def list_runs(
        self,
        task_id: str | None = None,
        status: RunStatusArg | None = None,
        cursor: PageCursor = None,
        limit: PageLimit = 20,
    ) -> RunPage:
        owner = self.rt.owner()
        runs = await self.rt.tasks.list_runs(
            owner,
            task_id=task_id,
            status=None if status is None else RunStatus(status),
            before=cursor,
            limit=limit + 1,
        )
        page, nxt = one_page(runs, limit)
        return await self.hinted(owner, RunPage(runs=[run_view(r) for r in page], next_cursor=nxt))

    @tool_errors
    async def get_events(
        self,
        after: EventCursor | None = None,
        wait: WaitSeconds = 0,
        limit: EventLimit = 50,
    ) -> EventPage:
        owner = self.rt.owner()
        wait = min(wait, self.rt.settings.max_wait.total_seconds())
        page = await self.rt.inbox.read(owner, after=after, wait=wait, limit=limit)
        return EventPage(
            events=[event_view(e) for e in page.events], cursor=page.cursor, more=page.more
        )

    @tool_errors
    async def list_deliveries(
        self,
        status: Literal["pending", "delivered", "failed"] | None = None,
        task_id: str | None = None,
        cursor: PageCursor = None,
        limit: PageLimit = 20,
    ) -> DeliveryPage:
        owner = self.rt.owner()
        found = await self.rt.tasks.list_deliveries(
            owner,
            status=None if status is None else DeliveryStatus(status),
            task_id=task_id,
            before=cursor,
            limit=limit + 1,
        )
        page, nxt = one_page(found, limit)
        view = DeliveryPage(deliveries=[delivery_view(d) for d in page], next_cursor=nxt)
        return await self.hinted(owner, view)

    @tool_errors
    async def redeliver(self, delivery_id: str) -> DeliveryView:
        owner = self.rt.owner()
        delivery = await self.rt.tasks.redeliver(owner, delivery_id)
        self.rt.callbacks.wake()
        return delivery_view(delivery)
