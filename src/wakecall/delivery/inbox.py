"""The inbox: the durable event log read with a cursor, with long polling and read positions.

The log in the store is the source of truth; this module adds waiting (a reader parked on an
empty page is woken when this process writes an event for its owner, when another process's
hint names the owner, or at once when the server stops) and read positions.

A *reader* is an owner and a client identity. The server names the client of each request
(`reading_as`; see `wakecall.server.readers` for what the identity is on stdio and on HTTP).
The newest cursor a reader was given is kept in the store (`Store.save_read_position`), so a
read without `after` continues where the reader left off, across restarts of the server and
on any node sharing the store; and the hints of tool answers say what is newer than it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import anyio

from wakecall.clock import Clock, SystemClock
from wakecall.delivery.fanout import EventFanout
from wakecall.models import Event
from wakecall.store.base import Hint, Store

__all__ = ["Inbox", "InboxPage", "current_client", "reading_as"]

#: Events written by another node or process wake readers through the store's hints; as hints
#: may be lost, a waiting reader also looks at the log again after this many seconds.
RECHECK_SECONDS = 1.0

#: The "while you were away" hint counts at most this many events.
AWAY_COUNT_CAP = 1000

_client: ContextVar[str] = ContextVar("wakecall_reader_client", default="")


def current_client() -> str:
    """The client identity of the current request ("" when the server named none)."""
    return _client.get()


@contextmanager
def reading_as(client: str) -> Iterator[None]:
    """Within the block, reads and hints are those of `client` (with the caller's owner)."""
    token = _client.set(client)
    try:
        yield
    finally:
        _client.reset(token)


@dataclass(frozen=True)
class InboxPage:
    events: list[Event]
    cursor: int
    more: bool


class Inbox:
    def __init__(self, store: Store, fanout: EventFanout, *, clock: Clock | None = None) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self._waiters: dict[str, anyio.Event] = {}
        self._greeted: set[tuple[str, str]] = set()  # readers given a hint since the start
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

    @property
    def waiting(self) -> bool:
        """False once the server is stopping (readers are answered at once then)."""
        return self._waiting

    def news_of(self, owner: str) -> anyio.Event:
        """An event set when this process writes an event of `owner`, when another process's
        hint names the owner, or when the server stops. Take it before reading the log, then
        wait on it when the read found nothing: an event written in between sets it."""
        if not self._waiting:
            done = anyio.Event()
            done.set()
            return done
        return self._waiters.setdefault(owner, anyio.Event())

    async def last_read(self, owner: str, client: str | None = None) -> int:
        """The newest cursor the reader was given (0: none), as kept in the store."""
        return await self.store.read_position(owner, _named(client))

    async def read(
        self,
        owner: str,
        *,
        after: int | None,
        wait: float = 0.0,
        limit: int = 50,
        client: str | None = None,
    ) -> InboxPage:
        """Events after `after` (default: the newest cursor this reader was given), oldest
        first. With `wait` > 0 and nothing to read, waits up to `wait` seconds for one. The
        reader's position moves to the newest cursor returned (never back)."""
        client = _named(client)
        start = await self.last_read(owner, client) if after is None else after
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
        if events:
            with anyio.CancelScope(shield=True):  # what was handed out is read
                await self.store.save_read_position(owner, client, cursor, self.clock.now())
        self._greeted.add((owner, client))
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

    async def hint(self, owner: str, client: str | None = None) -> str | None:
        """A one-line hint when the reader has events newer than the cursor it last read. The
        first hint a reader gets after this process started says how many arrived while it
        was away."""
        client = _named(client)
        latest, seen = await self.store.reader_news(owner, client)
        first = (owner, client) not in self._greeted
        self._greeted.add((owner, client))
        if latest <= seen:
            return None
        if first:
            count = await self.store.count_events(owner, after=seen, limit=AWAY_COUNT_CAP)
            many = f"{count}+" if count >= AWAY_COUNT_CAP else str(count)
            return (
                f"While you were away, {many} new event{'' if count == 1 else 's'} arrived "
                f"(after cursor {seen}, newest {latest}): call get_events() to read them."
            )
        return (
            f"New events after cursor {seen} (newest {latest}): call get_events(after={seen}) "
            "to read them."
        )


def _named(client: str | None) -> str:
    return current_client() if client is None else client
