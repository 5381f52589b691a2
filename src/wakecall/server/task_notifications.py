"""Task status notifications of the Tasks extension: a `subscriptions/listen` request whose
filter names `taskIds` also gets `notifications/tasks` on its stream, the full task (as
`tasks/get` shows it) each time its status changes, until it ends.

The SDK serves `subscriptions/listen` (and knows nothing of `taskIds`); `TaskListen` wraps its
handler: it acknowledges the task ids it agreed to (the caller's own, still known) in the
stream's acknowledgement, and watches them beside the SDK's handler, on the same stream. A
request naming `taskIds` without declaring the extension gets the spec's -32021 error.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

import anyio
from mcp.server.context import HandlerResult, ServerRequestContext
from mcp.server.mcpserver import require_client_extension
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    SubscriptionFilter,
    SubscriptionsAcknowledgedNotification,
    SubscriptionsListenRequestParams,
)
from pydantic import BaseModel

from wakecall.server.tasks_ext import TASKS_EXTENSION

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from mcp.server.session import ServerSession

    from wakecall.models.subscriptions import ToolTask
    from wakecall.server.runtime import Runtime

__all__ = ["TaskListen"]

log = logging.getLogger(__name__)

SUBSCRIPTION_ID_KEY = "io.modelcontextprotocol/subscriptionId"
#: A watched task is looked at again at least this often (its run may start on another node).
RECHECK_SECONDS = 1.0


class TaskNotification(BaseModel):
    method: str = "notifications/tasks"
    params: dict[str, Any]


class _AckWithTasks:
    """The request's session, with the stream's acknowledgement naming the task ids agreed."""

    def __init__(self, session: Any, task_ids: list[str]) -> None:
        self._session = session
        self._task_ids = task_ids
        self.acked = anyio.Event()

    async def send_notification(self, notification: Any, related_request_id: Any = None) -> None:
        if isinstance(notification, SubscriptionsAcknowledgedNotification):
            honored = notification.params.notifications.model_dump(by_alias=True)
            honored["taskIds"] = self._task_ids
            params = notification.params.model_copy(
                update={"notifications": SubscriptionFilter.model_validate(honored)}
            )
            notification = notification.model_copy(update={"params": params})
        await self._session.send_notification(notification, related_request_id=related_request_id)
        self.acked.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


class TaskListen:
    """`subscriptions/listen`, with `taskIds`."""

    def __init__(
        self,
        runtime: Callable[[], Runtime],
        inner: Callable[[ServerRequestContext[Any, Any], Any], Awaitable[HandlerResult]],
    ) -> None:
        self.runtime = runtime
        self.inner = inner

    async def __call__(self, ctx: ServerRequestContext[Any, Any], params: Any) -> HandlerResult:
        """Serve one listen stream (`params`: `SubscriptionsListenRequestParams`)."""
        assert isinstance(params, SubscriptionsListenRequestParams)
        wanted = (params.notifications.model_extra or {}).get("taskIds")
        if wanted is None:
            return await self.inner(ctx, params)
        require_client_extension(ctx, TASKS_EXTENSION)
        if not isinstance(wanted, list) or not all(isinstance(t, str) for t in wanted):
            raise MCPError(INVALID_PARAMS, 'taskIds must be a list of task ids: ["wtk_…"]')
        rt = self.runtime()
        owner, now = rt.owner(), rt.engine.clock.now()
        handles = []
        for task_id in dict.fromkeys(wanted):
            handle = await rt.engine.store.get_tool_task(owner, task_id, now)
            if handle is not None:
                handles.append(handle)
        session = _AckWithTasks(ctx.session, [h.id for h in handles])
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch, ctx, session.acked, handles, owner)
            # The SDK's listen handler only sends notifications through the session.
            result = await self.inner(replace(ctx, session=cast("ServerSession", session)), params)
            tg.cancel_scope.cancel()
        return result

    async def _watch(
        self,
        ctx: ServerRequestContext[Any, Any],
        acked: anyio.Event,
        handles: list[ToolTask],
        owner: str,
    ) -> None:
        """Send each task's state when it changes, until every one has ended."""
        # lazy: start-up time (the server is made before wakecall loads; this runs after)
        from wakecall.errors import RunNotFound
        from wakecall.server.tool_tasks import detailed_task

        rt = self.runtime()
        meta = {SUBSCRIPTION_ID_KEY: ctx.request_id}
        sent: dict[str, tuple[str, str]] = {}
        await acked.wait()  # the acknowledgement is the stream's first frame
        while handles:
            news = rt.inbox.news_of(owner)
            for handle in list(handles):
                try:
                    run = await rt.tasks.get_run(owner, handle.run_id)
                except RunNotFound:
                    run = None
                task = detailed_task(handle, run)
                seen = (task["status"], task.get("statusMessage", ""))
                if sent.get(handle.id) != seen:
                    sent[handle.id] = seen
                    note = TaskNotification(params={**task, "_meta": meta})
                    await ctx.session.send_notification(note, related_request_id=ctx.request_id)  # type: ignore[arg-type]
                if task["status"] in ("completed", "failed", "cancelled"):
                    handles.remove(handle)
            if not rt.inbox.waiting:
                return  # the server is stopping
            with anyio.move_on_after(RECHECK_SECONDS):
                await news.wait()
