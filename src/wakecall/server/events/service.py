"""What answers the Events extension's `events/list`, `events/poll` and `events/stream`: the
owner's durable event log, read in the position space of `get_events`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS
from pydantic import BaseModel

from wakecall.delivery.envelopes import (
    CALLBACK_ENDPOINT_ERROR,
    FORBIDDEN,
    NOT_FOUND,
    RESOURCE_EXHAUSTED,
    UNSUPPORTED,
)
from wakecall.delivery.occurrences import PAGE, age_floor, occurrence, read_matching, start_at
from wakecall.server.events.catalog import known, listing
from wakecall.server.events.extension import (
    ListEventsParams,
    PollEventsParams,
    StreamEventsParams,
)

if TYPE_CHECKING:
    from wakecall.server.runtime import Runtime

__all__ = [
    "CALLBACK_ENDPOINT_ERROR",
    "FORBIDDEN",
    "NOT_FOUND",
    "RESOURCE_EXHAUSTED",
    "SUBSCRIPTION_ID_KEY",
    "UNSUPPORTED",
    "EventsService",
    "check_subscription",
]

SUBSCRIPTION_ID_KEY = "io.modelcontextprotocol/subscriptionId"

#: How soon a poller should come back when it has read everything.
NEXT_POLL_MS = 5000
#: Events an `events/poll` answer holds at most (and by default).
MAX_POLL_EVENTS = 500


def parse_cursor(cursor: str | None) -> int | None:
    """A cursor of the log, or None ("start from now"). Anything but decimal digits is
    `InvalidParams`."""
    if cursor is None:
        return None
    text = str(cursor).strip()
    if not text.isdigit() or len(text) > 18:
        raise MCPError(
            INVALID_PARAMS,
            f"cursor {cursor!r} is not one of this server's: give the cursor of a previous "
            'answer (such as "41"), or null to start from now',
        )
    return int(text)


class EventsNotification(BaseModel):
    """A `notifications/events/*` message (not in the spec's union of notifications)."""

    method: str
    params: dict[str, Any]


def check_subscription(name: str, arguments: dict[str, Any]) -> None:
    """`NotFound` for an unknown event name, `InvalidParams` for arguments outside the
    event types' `inputSchema`."""
    if not known(name):
        raise MCPError(
            NOT_FOUND,
            f"no event type named {name!r}; events/list names them (e.g. task.run.completed)",
            {"kind": "event"},
        )
    unknown = set(arguments) - {"taskIds", "metadata"}
    if unknown:
        raise MCPError(
            INVALID_PARAMS,
            f"unknown subscription arguments {sorted(unknown)}: give taskIds and/or metadata, "
            'e.g. {"taskIds": ["tsk_01…"]} or {"metadata": {"team": "ops"}}',
        )
    task_ids = arguments.get("taskIds")
    if task_ids is not None and (
        not isinstance(task_ids, list) or not all(isinstance(t, str) for t in task_ids)
    ):
        raise MCPError(
            INVALID_PARAMS, 'taskIds must be a list of task ids, e.g. {"taskIds": ["tsk_01…"]}'
        )
    metadata = arguments.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise MCPError(
            INVALID_PARAMS, 'metadata must be an object, e.g. {"metadata": {"team": "ops"}}'
        )


class EventsService:
    """Answers the Events extension's reads for the runtime `rt`."""

    def __init__(self, rt: Runtime, *, heartbeat_s: float = 15.0) -> None:
        self.rt = rt
        self.heartbeat_s = heartbeat_s

    async def list_events(
        self, ctx: ServerRequestContext[Any, Any], params: ListEventsParams
    ) -> dict[str, Any]:
        return {"events": listing()}

    async def poll(
        self, ctx: ServerRequestContext[Any, Any], params: PollEventsParams
    ) -> dict[str, Any]:
        check_subscription(params.name, params.arguments)
        rt = self.rt
        owner = rt.owner()
        cursor = parse_cursor(params.cursor)
        start = await start_at(rt.engine.store, owner, cursor)
        if cursor is None:
            return self._poll_answer([], start.position, start.truncated, more=False)
        limit = min(params.max_events or MAX_POLL_EVENTS, MAX_POLL_EVENTS)
        found = await read_matching(
            rt.engine.store,
            owner,
            params.name,
            params.arguments,
            start.position,
            limit=limit,
            not_before=age_floor(rt.engine.clock.now(), params.max_age_ms),
        )
        events = [occurrence(e) for e in found.events]
        return self._poll_answer(
            events, found.position, start.truncated or found.truncated, more=found.more
        )

    @staticmethod
    def _poll_answer(
        events: list[dict[str, Any]], position: int, truncated: bool, *, more: bool
    ) -> dict[str, Any]:
        return {
            "events": events,
            "cursor": str(position),
            "truncated": truncated,
            "hasMore": more,
            "nextPollMs": 0 if more else NEXT_POLL_MS,
        }

    async def stream(
        self, ctx: ServerRequestContext[Any, Any], params: StreamEventsParams
    ) -> dict[str, Any]:
        """Events as `notifications/events/event` on this request's stream until the client
        cancels it (or the server stops), a heartbeat with the position read to in quiet
        periods."""
        check_subscription(params.name, params.arguments)
        rt = self.rt
        store, inbox, owner = rt.engine.store, rt.inbox, rt.owner()
        meta = {SUBSCRIPTION_ID_KEY: ctx.request_id}
        cursor = parse_cursor(params.cursor)
        start = await start_at(store, owner, cursor)
        news = inbox.news_of(owner)
        floor = None if cursor is None else age_floor(rt.engine.clock.now(), params.max_age_ms)
        found = await read_matching(
            store,
            owner,
            params.name,
            params.arguments,
            start.position,
            limit=PAGE,
            not_before=floor,
        )
        await self._send(
            ctx,
            "notifications/events/active",
            {"cursor": str(start.position), "truncated": start.truncated or found.truncated},
            meta,
        )
        while True:
            for event in found.events:
                await self._send(
                    ctx, "notifications/events/event", occurrence(event, cursor=event.cursor), meta
                )
            position = found.position
            if not found.more:
                if not inbox.waiting:
                    break  # the server is stopping: end the stream with its result
                with anyio.move_on_after(self.heartbeat_s) as quiet:
                    await news.wait()
                if quiet.cancelled_caught:
                    await self._send(
                        ctx, "notifications/events/heartbeat", {"cursor": str(position)}, meta
                    )
            news = inbox.news_of(owner)
            found = await read_matching(
                store, owner, params.name, params.arguments, position, limit=PAGE
            )
        return {"_meta": meta}

    @staticmethod
    async def _send(
        ctx: ServerRequestContext[Any, Any],
        method: str,
        params: dict[str, Any],
        meta: dict[str, Any],
    ) -> None:
        note = EventsNotification(method=method, params={**params, "_meta": meta})
        await ctx.session.send_notification(note, related_request_id=ctx.request_id)  # type: ignore[arg-type]
