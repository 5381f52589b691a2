"""Webhook subscriptions of the Events extension: `events/subscribe` and `events/unsubscribe`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError

from wakecall.server.events.extension import SubscribeParams, UnsubscribeParams
from wakecall.server.events.service import UNSUPPORTED

if TYPE_CHECKING:
    from wakecall.server.runtime import Runtime

__all__ = ["WebhookService"]


class WebhookService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def subscribe(
        self, ctx: ServerRequestContext[Any, Any], params: SubscribeParams
    ) -> dict[str, Any]:
        raise MCPError(
            UNSUPPORTED,
            "webhook delivery is not offered yet",
            {"feature": "deliveryMode", "value": "webhook"},
        )

    async def unsubscribe(
        self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeParams
    ) -> dict[str, Any]:
        raise MCPError(
            UNSUPPORTED,
            "webhook delivery is not offered yet",
            {"feature": "deliveryMode", "value": "webhook"},
        )
