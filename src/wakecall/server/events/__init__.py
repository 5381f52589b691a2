"""The MCP Events extension (the Triggers & Events working group's design sketch): wakecall's
event types (`catalog`), reading the owner's log for one subscription (`reading`), the
requests (`extension`): `events/list`, `events/poll`, `events/stream`, and webhook
subscriptions (`webhooks`: `events/subscribe`, `events/unsubscribe`)."""

from __future__ import annotations

from wakecall.server.events.extension import EventsExtension

__all__ = ["EventsExtension"]
