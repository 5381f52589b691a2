"""The Events extension as an SDK `Extension`: its request methods and their params. What
answers them (`service.EventsService`, from the owner's durable event log) is made once the
runtime has started; this module stays light, as the server is made before wakecall loads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from mcp.server.context import ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp_types import RequestParams
from pydantic import Field

__all__ = [
    "EventsExtension",
    "ListEventsParams",
    "PollEventsParams",
    "StreamEventsParams",
    "SubscribeParams",
    "UnsubscribeParams",
]


class ListEventsParams(RequestParams):
    cursor: str | None = None


class SubscriptionParams(RequestParams):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    cursor: str | None = None
    max_age_ms: int | None = Field(default=None, ge=0)


class PollEventsParams(SubscriptionParams):
    max_events: int | None = Field(default=None, ge=1)


class StreamEventsParams(SubscriptionParams):
    pass


class WebhookDelivery(RequestParams):
    mode: str = "webhook"
    url: str
    secret: str | None = None


class SubscribeParams(SubscriptionParams):
    delivery: WebhookDelivery
    ttl_ms: int | None = Field(default=-1)  # -1: omitted (the server's default); None: no expiry


class UnsubscribeParams(RequestParams):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    delivery: WebhookDelivery


Ctx = ServerRequestContext[Any, Any]


class EventReads(Protocol):
    """What answers the reads (`service.EventsService`)."""

    async def list_events(self, ctx: Ctx, params: ListEventsParams) -> dict[str, Any]: ...
    async def poll(self, ctx: Ctx, params: PollEventsParams) -> dict[str, Any]: ...
    async def stream(self, ctx: Ctx, params: StreamEventsParams) -> dict[str, Any]: ...


class Webhooks(Protocol):
    """What answers the webhook requests (`webhooks.WebhookService`)."""

    async def subscribe(self, ctx: Ctx, params: SubscribeParams) -> dict[str, Any]: ...
    async def unsubscribe(self, ctx: Ctx, params: UnsubscribeParams) -> dict[str, Any]: ...


class EventsExtension(Extension):
    """wakecall's events to any client of the Events extension. `reads` and `webhooks` give
    what answers the requests, once the runtime has started."""

    identifier = "dev.wakecall/events"

    def __init__(self, reads: Callable[[], EventReads], webhooks: Callable[[], Webhooks]) -> None:
        self._reads = reads
        self._webhooks = webhooks

    def settings(self) -> dict[str, Any]:
        return {"spec": "experimental-ext-triggers-events design sketch"}

    def methods(self) -> Sequence[MethodBinding]:
        return [
            MethodBinding("events/list", ListEventsParams, self.list_events),
            MethodBinding("events/poll", PollEventsParams, self.poll),
            MethodBinding("events/stream", StreamEventsParams, self.stream),
            MethodBinding("events/subscribe", SubscribeParams, self.subscribe),
            MethodBinding("events/unsubscribe", UnsubscribeParams, self.unsubscribe),
        ]

    async def list_events(
        self, ctx: ServerRequestContext[Any, Any], params: ListEventsParams
    ) -> dict[str, Any]:
        return await self._reads().list_events(ctx, params)

    async def poll(
        self, ctx: ServerRequestContext[Any, Any], params: PollEventsParams
    ) -> dict[str, Any]:
        return await self._reads().poll(ctx, params)

    async def stream(
        self, ctx: ServerRequestContext[Any, Any], params: StreamEventsParams
    ) -> dict[str, Any]:
        return await self._reads().stream(ctx, params)

    async def subscribe(
        self, ctx: ServerRequestContext[Any, Any], params: SubscribeParams
    ) -> dict[str, Any]:
        return await self._webhooks().subscribe(ctx, params)

    async def unsubscribe(
        self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeParams
    ) -> dict[str, Any]:
        return await self._webhooks().unsubscribe(ctx, params)
