"""Push to live MCP sessions: best effort, never in the engine's way.

The engine tells `Pusher.on_events` which owners have new events (synchronous, never blocks),
and the store's hints tell `Pusher.on_hint` of events other nodes wrote. A task of the server
then reads each such owner's new events from the log and, for each:

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
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal, get_args

import anyio
import anyio.lowlevel
from mcp import types
from mcp.server.session import ServerSession
from mcp.server.subscriptions import ResourceUpdated, ServerEvent
from pydantic import BaseModel, Field

from wakecall.server.sdk_reaches import connection_of

# The registry and the bus are made before the runtime's modules load (see server.app).
if TYPE_CHECKING:
    from wakecall.models import Event
    from wakecall.store.base import Hint, Store

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

    def has_listeners(self, owner: str) -> bool:
        return any(o == owner for o, _ in self._listeners.values())

    def owners(self) -> set[str]:
        return {o for o, _ in self._listeners.values()}

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
        #: Told the owner of each session registered (the pusher starts its tail then).
        self.on_registered: Callable[[str], None] | None = None

    def __len__(self) -> int:
        return len(self._live)

    def register(self, session: ServerSession, owner: str) -> LiveSession:
        connection = connection_of(session)
        key = id(connection)
        live = self._live.get(key)
        if live is None:
            live = LiveSession(key=key, session=session, owner=owner)
            self._live[key] = live
            connection.exit_stack.callback(self._live.pop, key, None)
            log.debug("session %s of %s registered", key, owner)
            if self.on_registered is not None:
                self.on_registered(owner)
        return live

    def lookup(self, session: ServerSession) -> LiveSession | None:
        return self._live.get(id(connection_of(session)))

    def of_owner(self, owner: str) -> list[LiveSession]:
        return [s for s in self._live.values() if s.owner == owner]

    def owners(self) -> set[str]:
        return {s.owner for s in self._live.values()}


def event_uris(event: Event) -> list[str]:
    uris = ["wakecall://tasks"]
    if event.task_id:
        uris += [f"wakecall://tasks/{event.task_id}", f"wakecall://tasks/{event.task_id}/runs"]
    if event.run_id:
        uris.append(f"wakecall://runs/{event.run_id}")
    return uris


def channel_text(event: Event) -> str:
    """One or two lines an agent can act on."""
    from wakecall.models import EventType  # lazy: start-up time (see the imports above)

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
    if event.type == EventType.RUN_STALE:
        beat = payload.get("heartbeat") or {}
        what = "cancelling it" if beat.get("killed") else "it is still running"
        return (
            f"wakecall: task '{name}' ({event.task_id}) run {event.run_id} has given no sign of "
            f"life for {beat.get('silentS', 0):.0f}s; {what}."
        )
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
    """Pushes each owner's events, in cursor order, to the owner's live sessions and listeners.

    Events are read back from the log, whoever wrote them: this node's engine (its listener
    says which owners have new events, and from which cursor), another node or process (the
    store's hints say which owners), or nobody known (every `poll_interval`, the owners that
    have live sessions are looked at, since hints may be lost). Per owner, the cursor pushed
    last is kept while the owner has a live session or listener, so each event is pushed once
    by each node that has a session of its owner; event cursors commit in order (see the
    stores), so reading after that cursor never skips an event.
    """

    PAGE = 200

    def __init__(
        self,
        bus: OwnerBus | None,
        registry: SessionRegistry,
        store: Store,
        *,
        channel: bool,
        poll_interval: float = 2.0,
        max_changes: int = 10_000,
    ) -> None:
        self.bus = bus
        self.registry = registry
        self.store = store
        self.channel = channel
        self.poll_interval = poll_interval
        self._tails: dict[str, int] = {}  # owner -> newest cursor pushed
        self._dirty: dict[str, int | None] = {}  # owner -> lowest new cursor known, if any
        self._changes: deque[_Push] = deque()
        self._max_changes = max_changes
        self._kick = anyio.Event()
        self._closed = False
        self.dropped = 0
        #: Told, for each event pushed, to how many sessions it went and how many failed.
        self.on_pushed: Callable[[int, int], None] | None = None

    def close(self) -> None:
        self._closed = True
        self._kick.set()

    def _has_audience(self, owner: str) -> bool:
        return bool(self.registry.of_owner(owner)) or (
            self.bus is not None and self.bus.has_listeners(owner)
        )

    def _audience(self) -> set[str]:
        owners = self.registry.owners()
        if self.bus is not None:
            owners |= self.bus.owners()
        return owners

    def _mark(self, owner: str, first: int | None) -> None:
        known = self._dirty.get(owner)
        if known is not None and first is not None:
            first = min(known, first)
        self._dirty[owner] = known if first is None else first
        self._kick.set()

    def on_events(self, events: Sequence[Event]) -> None:
        """Engine listener: this node wrote events. Never blocks."""
        for event in events:
            self._mark(event.owner, event.cursor)

    def on_registered(self, owner: str) -> None:
        """A session of `owner` appeared: if none was pushed to, start its tail at the newest
        event now. Taken later, at the first hint of another node's events, the tail would be
        read after those events committed, and they would never be pushed."""
        if owner not in self._tails:
            self._mark(owner, None)

    def on_hint(self, hint: Hint) -> None:
        """Engine hint listener: another node or process wrote events."""
        for owner in self._audience() if hint.all_owners else hint.owners:
            self._mark(owner, None)

    def changed(self, owner: str, task_id: str | None) -> None:
        """Announce that a task (or the task list) changed through a tool."""
        if len(self._changes) >= self._max_changes:
            self.dropped += 1
            log.warning("push queue full; dropping a resource-updated push")
            return
        uris = ["wakecall://tasks"] + ([f"wakecall://tasks/{task_id}"] if task_id else [])
        self._changes.append(_Push(owner, uris, None))
        self._kick.set()

    async def run(self) -> None:
        """Deliver pushes until closed or cancelled."""
        while not self._closed:
            with anyio.move_on_after(self.poll_interval) as waited:
                await self._kick.wait()
            self._kick = anyio.Event()
            if waited.cancelled_caught:  # the polling fallback
                for owner in self.registry.owners():
                    self._mark(owner, None)
            while self._changes:
                await self._push_safely(self._changes.popleft())
            dirty, self._dirty = self._dirty, {}
            for owner, first in dirty.items():
                try:
                    await self._catch_up(owner, first)
                except Exception:  # best effort: the inbox keeps every event
                    log.exception("pushing the events of %s failed", owner)

    async def _catch_up(self, owner: str, first: int | None) -> None:
        """Push the owner's events after the cursor pushed last."""
        if not self._has_audience(owner):
            self._tails.pop(owner, None)  # whoever connects later starts from then
            return
        tail = self._tails.get(owner)
        if tail is None:
            tail = first - 1 if first is not None else await self.store.latest_cursor(owner)
            self._tails[owner] = tail
        while True:
            events = await self.store.list_events(owner, after=tail, limit=self.PAGE)
            for event in events:
                await self._push_safely(_Push(owner, event_uris(event), event))
                tail = self._tails[owner] = event.cursor
            if len(events) < self.PAGE:
                return

    async def _push_safely(self, item: _Push) -> None:
        try:
            await self._push(item)
        except Exception:  # best effort: one failed push must not stop the others
            log.exception("a push to live sessions failed")

    async def _push(self, item: _Push) -> None:
        if self.bus is not None:
            for uri in item.uris:
                await self.bus.publish_for(item.owner, ResourceUpdated(uri=uri))
        event = item.event
        sent = failed = 0
        for live in self.registry.of_owner(item.owner):
            try:
                with anyio.fail_after(SEND_TIMEOUT):
                    await self._push_to(live, item, event)
            except Exception:  # a session that is gone or stuck: the inbox has the event
                failed += 1
                log.debug("a push to session %s failed", live.key, exc_info=True)
            else:
                sent += 1
        if event is not None and self.on_pushed is not None and (sent or failed):
            self.on_pushed(sent, failed)

    async def _push_to(self, live: LiveSession, item: _Push, event: Event | None) -> None:
        """One session: resource updates it subscribed to, the log message, the channel."""
        for uri in item.uris:
            if uri in live.subscriptions:
                await live.session.send_resource_updated(uri)
        if event is None:
            return
        from wakecall.models import EventType  # lazy: start-up time (see the imports above)

        level: types.LoggingLevel = "warning" if event.type == EventType.RUN_FAILED else "info"
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
            note = ChannelNotification(params=ChannelParams(content=channel_text(event), meta=meta))
            await live.session.send_notification(note)  # type: ignore[arg-type]
