"""The inbox: the durable event log read with a cursor, with long polling.

The log in the store is the source of truth; this module only adds waiting (a reader parked on
an empty page is woken when this process writes an event for its owner, or at once when the
server stops) and remembers, per owner, the newest cursor handed out so that tool answers can
hint at unread events.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import anyio

from wakecall.delivery.fanout import EventFanout
from wakecall.models import Event
from wakecall.store.base import Hint, Store

__all__ = ["Inbox", "InboxPage"]

#: Events written by another node or process wake readers through the store's hints; as hints
#: may be lost, a waiting reader also looks at the log again after this many seconds.
RECHECK_SECONDS = 1.0


@dataclass(frozen=True)
class InboxPage:
    events: list[Event]
    cursor: int
    more: bool


class Inbox:
    def __init__(self, store: Store, fanout: EventFanout) -> None:
        self.store = store
        self._waiters: dict[str, anyio.Event] = {}
        self._read: dict[str, int] = {}
        self._waiting = True
        fanout.add_listener(self._on_events)
        fanout.add_hint_listener(self._on_hint)

    def _on_events(self, events: Sequence[Event]) -> None:
        self._wake_owners({e.owner for e in events})

    def _on_hint(self, hint: Hint) -> None:
        """Events written by another node or process."""
        self._wake_owners(list(self._waiters) if hint.all_owners else hint.owners)

    def _wake_owners(self, owners: Iterable[str]) -> None:
        for owner in owners:
            waiter = self._waiters.pop(owner, None)
            if waiter is not None:
                waiter.set()

    def stop_waiting(self) -> None:
        """Answer every reader parked in a long poll now, with what it has, and let later
        reads return at once (the server is stopping: its HTTP connections must close)."""
        self._waiting = False
        self._wake_owners(list(self._waiters))

    def last_read(self, owner: str) -> int:
        return self._read.get(owner, 0)

    async def read(
        self, owner: str, *, after: int | None, wait: float = 0.0, limit: int = 50
    ) -> InboxPage:
        """Events after `after` (default: the newest cursor this owner was given), oldest
        first. With `wait` > 0 and nothing to read, waits up to `wait` seconds for one."""
        start = self.last_read(owner) if after is None else after
        waiter = self._waiters.setdefault(owner, anyio.Event())
        events = await self.store.list_events(owner, after=start, limit=limit + 1)
        if not events and wait > 0 and self._waiting:
            with anyio.move_on_after(wait):
                while not events and self._waiting:
                    with anyio.move_on_after(RECHECK_SECONDS):
                        await waiter.wait()
                    waiter = self._waiters.setdefault(owner, anyio.Event())
                    events = await self.store.list_events(owner, after=start, limit=limit + 1)
        more = len(events) > limit
        events = events[:limit]
        cursor = events[-1].cursor if events else start
        if cursor > self.last_read(owner):
            self._read[owner] = cursor
        return InboxPage(events, cursor, more)

    @property
    def open(self) -> bool:
        """False once `stop_waiting` was called: the server is stopping."""
        return self._waiting

    async def peek(
        self, owner: str, *, after: int, wait: float = 0.0, limit: int = 50
    ) -> list[Event]:
        """Events after `after`, oldest first, waiting up to `wait` seconds for one as `read`
        does, without moving the position the owner last read (a dashboard watching the log
        must not mark the agent's events as read)."""
        waiter = self._waiters.setdefault(owner, anyio.Event())
        events = await self.store.list_events(owner, after=after, limit=limit)
        if not events and wait > 0 and self._waiting:
            with anyio.move_on_after(wait):
                while not events and self._waiting:
                    with anyio.move_on_after(RECHECK_SECONDS):
                        await waiter.wait()
                    waiter = self._waiters.setdefault(owner, anyio.Event())
                    events = await self.store.list_events(owner, after=after, limit=limit)
        return events

    async def hint(self, owner: str) -> str | None:
        """A one-line hint when the owner has events newer than the cursor it last read."""
        latest = await self.store.latest_cursor(owner)
        seen = self.last_read(owner)
        if latest <= seen:
            return None
        return (
            f"New events after cursor {seen} (newest {latest}): call get_events(after={seen}) "
            "to read them."
        )
