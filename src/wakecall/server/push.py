"""Push to live MCP sessions: best effort, never in the engine's way.

The engine hands each batch of written events to `Pusher.on_events` (synchronous, never
blocks: a full queue drops the push, the inbox keeps the event). A task of the server then:

* publishes `ResourceUpdated` for the task's and run's resources on the subscription bus
  (2026-07-28 clients listening with `subscriptions/listen`);
* for each live handshake-generation session of the event's owner: sends
  `notifications/resources/updated` for the URIs it subscribed to, a log message carrying the
  event, and, when enabled, a `notifications/claude/channel` message (Claude Code injects it
  into the conversation and starts a turn).

The SDK keeps no list of sessions, so `SessionRegistry` keeps one: sessions are registered when
their handshake completes and dropped when their connection closes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp import types
from mcp.server.session import ServerSession
from mcp.server.subscriptions import ResourceUpdated, ServerEvent
from pydantic import BaseModel, Field

from wakecall.models import Event, EventType

__all__ = [
    "CHANNEL_METHOD",
    "ChannelNotification",
    "ChannelParams",
    "LiveSession",
    "OwnerBus",
    "Pusher",
    "SessionRegistry",
    "event_uris",
]

log = logging.getLogger(__name__)

CHANNEL_METHOD: Final = "notifications/claude/channel"
LOG_LEVELS: tuple[str, ...] = get_args(types.LoggingLevel)  # by rising severity
SEND_TIMEOUT = 5.0


class ChannelParams(BaseModel):
    content: str
    meta: dict[str, str] = Field(default_factory=dict)


class ChannelNotification(BaseModel):
    """Claude Code's channel message (a vendor notification, not in the spec's union)."""

    method: Literal["notifications/claude/channel"] = CHANNEL_METHOD
    params: ChannelParams


@dataclass(eq=False)
class LiveSession:
    key: int
    session: ServerSession
    owner: str
    subscriptions: set[str] = field(default_factory=set)
    log_level: str = "info"


def _connection_of(session: ServerSession) -> Any:
    # mcp 2.3 has no public path from a request context to its connection, whose exit stack is
    # the only reliable signal that a session ended (sends to a dead session do not fail).
    return session._connection


class OwnerBus:
    """The SDK's `SubscriptionBus`, scoped by owner: a `subscriptions/listen` stream hears only
    about its own owner's resources (the SDK's in-memory bus would tell every stream)."""

    def __init__(self, owner_of: Callable[[], str]) -> None:
        self._owner_of = owner_of
        self._listeners: dict[object, tuple[str, Callable[[ServerEvent], None]]] = {}

    async def publish(self, event: ServerEvent) -> None:
        """Publish to the listeners of the current request's owner."""
        await self.publish_for(self._owner_of(), event)

    async def publish_for(self, owner: str, event: ServerEvent) -> None:
        for listener_owner, listener in list(self._listeners.values()):
            if listener_owner != owner:
                continue
            try:
                listener(event)
            except Exception:  # one bad listener must not starve the others
                log.exception("subscription listener raised; continuing")
        await anyio.lowlevel.checkpoint()

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        """Called inside the listen request, so the owner is the caller's."""
        token = object()
        self._listeners[token] = (self._owner_of(), listener)

        def unsubscribe() -> None:
            self._listeners.pop(token, None)

        return unsubscribe


class SessionRegistry:
    def __init__(self) -> None:
        self._live: dict[int, LiveSession] = {}

    def __len__(self) -> int:
        return len(self._live)

    def register(self, session: ServerSession, owner: str) -> LiveSession:
        connection = _connection_of(session)
        key = id(connection)
        live = self._live.get(key)
        if live is None:
            live = LiveSession(key=key, session=session, owner=owner)
            self._live[key] = live
            connection.exit_stack.callback(self._live.pop, key, None)
            log.debug("session %s of %s registered", key, owner)
        return live

    def lookup(self, session: ServerSession) -> LiveSession | None:
        return self._live.get(id(_connection_of(session)))

    def of_owner(self, owner: str) -> list[LiveSession]:
        return [s for s in self._live.values() if s.owner == owner]


def event_uris(event: Event) -> list[str]:
    uris = ["wakecall://tasks"]
    if event.task_id:
        uris += [f"wakecall://tasks/{event.task_id}", f"wakecall://tasks/{event.task_id}/runs"]
    if event.run_id:
        uris.append(f"wakecall://runs/{event.run_id}")
    return uris


def channel_text(event: Event) -> str:
    """One or two lines an agent can act on."""
    payload = event.payload
    task = payload.get("task") or {}
    run = payload.get("run") or {}
    name = task.get("name", event.task_id)
    if event.type == EventType.WAKEUP_FIRED:
        wakeup = payload.get("wakeup") or {}
        text = f"wakecall: wakeup '{name}' fired. Reason: {wakeup.get('reason') or '(none)'}"
        if wakeup.get("context") is not None:
            text += f"\nContext: {json.dumps(wakeup['context'])[:2000]}"
        return text
    if event.type == EventType.TASK_EXPIRED:
        return f"wakecall: task '{name}' ({event.task_id}) ended: {payload.get('reason')}"
    status = run.get("status")
    text = f"wakecall: task '{name}' ({event.task_id}) run {event.run_id} {status}"
    if run.get("errorMessage"):
        text += f": {run['errorMessage']}"
    text += f". Details: get_events(after={event.cursor - 1}) or list_runs."
    return text


@dataclass(frozen=True)
class _Push:
    owner: str
    uris: list[str]
    event: Event | None  # None: a change made by a tool, announced to resource subscribers only


class Pusher:
    def __init__(self, bus: OwnerBus | None, registry: SessionRegistry, *, channel: bool):
        self.bus = bus
        self.registry = registry
        self.channel = channel
        self._send: MemoryObjectSendStream[_Push]
        self._receive: MemoryObjectReceiveStream[_Push]
        self._send, self._receive = anyio.create_memory_object_stream[_Push](10_000)
        self.dropped = 0

    def close(self) -> None:
        self._send.close()

    def _queue(self, item: _Push) -> None:
        try:
            self._send.send_nowait(item)
        except anyio.WouldBlock:
            self.dropped += 1
            log.warning("push queue full; dropping a push (the inbox still has every event)")
        except anyio.ClosedResourceError:
            pass  # shutting down

    def on_events(self, events: Sequence[Event]) -> None:
        """Engine listener: queue the pushes of written events. Never blocks."""
        for event in events:
            self._queue(_Push(event.owner, event_uris(event), event))

    def changed(self, owner: str, task_id: str | None) -> None:
        """Announce that a task (or the task list) changed through a tool."""
        uris = ["wakecall://tasks"] + ([f"wakecall://tasks/{task_id}"] if task_id else [])
        self._queue(_Push(owner, uris, None))

    async def run(self) -> None:
        """Deliver queued pushes until cancelled."""
        async with self._receive:
            async for item in self._receive:
                try:
                    await self._push(item)
                except Exception:  # best effort: one failed push must not stop the others
                    log.exception("a push to live sessions failed")

    async def _push(self, item: _Push) -> None:
        if self.bus is not None:
            for uri in item.uris:
                await self.bus.publish_for(item.owner, ResourceUpdated(uri=uri))
        event = item.event
        for live in self.registry.of_owner(item.owner):
            with anyio.move_on_after(SEND_TIMEOUT):
                for uri in item.uris:
                    if uri in live.subscriptions:
                        await live.session.send_resource_updated(uri)
                if event is None:
                    continue
                level: types.LoggingLevel = (
                    "warning" if event.type == EventType.RUN_FAILED else "info"
                )
                if LOG_LEVELS.index(level) >= LOG_LEVELS.index(live.log_level):
                    data = {"event": str(event.type), "cursor": event.cursor, **event.payload}
                    await live.session.send_notification(
                        types.LoggingMessageNotification(
                            params=types.LoggingMessageNotificationParams(
                                level=level, data=data, logger="wakecall"
                            )
                        )
                    )
                if self.channel:
                    meta = {
                        "event": str(event.type),
                        "cursor": str(event.cursor),
                        "task_id": event.task_id or "",
                        "run_id": event.run_id or "",
                    }
                    note = ChannelNotification(
                        params=ChannelParams(content=channel_text(event), meta=meta)
                    )
                    await live.session.send_notification(note)  # type: ignore[arg-type]
