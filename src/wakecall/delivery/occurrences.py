"""Events as the MCP Events extension carries them (`occurrence`, with a stable `event_id`),
and reading the owner's log for one subscription `(name, arguments)` from a position: the
position space is the log's, the one `get_events` reads (a cursor is its decimal text). The
server's requests and the webhook subscriptions' feeder both read it so."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from wakecall.models import Event
from wakecall.store.base import Store

__all__ = [
    "Found",
    "Start",
    "age_floor",
    "event_id",
    "matches",
    "occurrence",
    "read_matching",
    "start_at",
    "start_not_before",
]

#: Events read per query, and read at most per request (a request that read this many without
#: filling its page answers with `hasMore`).
PAGE = 200
SCAN_LIMIT = 2000


@dataclass(frozen=True)
class Start:
    """Where reading starts, and whether that is later than the position asked for."""

    position: int
    truncated: bool


async def start_at(store: Store, owner: str, cursor: int | None) -> Start:
    """Where to read from for a client that gives `cursor`: now for None; the newest
    position when the cursor is beyond it (a cursor of another server or owner); the owner's
    pruned horizon when it is older (events after it were deleted). Both are `truncated`."""
    latest = await store.latest_cursor(owner)
    if cursor is None:
        return Start(latest, False)
    if cursor > latest:
        return Start(latest, True)
    horizon = await store.event_horizon(owner)
    if cursor < horizon:
        return Start(horizon, True)
    return Start(cursor, False)


async def start_not_before(
    store: Store,
    owner: str,
    name: str,
    arguments: Mapping[str, Any],
    start: Start,
    not_before: datetime | None,
) -> Start:
    """`start` moved past the events older than `not_before` (a `maxAgeMs` floor): to just
    before the subscription's first event not older than it (reads are `cursor > position`,
    and an owner's cursors are integers), or to the last position read when there is none.
    `truncated` too when events were skipped. The whole log after `start` may be read."""
    if not_before is None:
        return start
    position, truncated = start.position, start.truncated
    while True:
        found = await read_matching(
            store, owner, name, arguments, position, limit=1, not_before=not_before
        )
        truncated = truncated or found.truncated
        if found.events:
            return Start(found.events[0].cursor - 1, truncated)
        if not found.more:
            return Start(found.position, truncated)
        position = found.position


@dataclass
class Found:
    events: list[Event] = field(default_factory=list)
    position: int = 0  # the last position read
    truncated: bool = False  # events older than the age floor were skipped
    more: bool = False  # more may be there: read again at once


async def read_matching(
    store: Store,
    owner: str,
    name: str,
    arguments: Mapping[str, Any],
    after: int,
    *,
    limit: int,
    not_before: datetime | None = None,
) -> Found:
    """The subscription's events after `after`, oldest first, at most `limit`; events older
    than `not_before` are skipped (and the result says so)."""
    found = Found(position=after)
    scanned = 0
    while scanned < SCAN_LIMIT:
        page = await store.list_events(owner, after=found.position, limit=PAGE)
        scanned += len(page)
        for index, event in enumerate(page):
            found.position = event.cursor
            if not_before is not None and event.created_at < not_before:
                found.truncated = True
                continue
            if matches(event, name, arguments):
                found.events.append(event)
                if len(found.events) >= limit:
                    found.more = index + 1 < len(page) or len(page) == PAGE
                    return found
        if len(page) < PAGE:
            return found
    found.more = True
    return found


def age_floor(now: datetime, max_age_ms: int | None) -> datetime | None:
    return None if max_age_ms is None else now - timedelta(milliseconds=max_age_ms)


def matches(event: Event, name: str, arguments: Mapping[str, Any]) -> bool:
    """Whether `event` belongs to the subscription `(name, arguments)`."""
    if str(event.type) != name:
        return False
    task_ids = arguments.get("taskIds")
    if task_ids is not None and event.task_id not in task_ids:
        return False
    wanted = arguments.get("metadata")
    if wanted:
        metadata = (event.payload.get("task") or {}).get("metadata") or {}
        if any(metadata.get(key) != value for key, value in wanted.items()):
            return False
    return True


def event_id(event: Event) -> str:
    """The event's stable id (the same by every delivery mode, on every retry)."""
    digest = hashlib.blake2b(f"{event.owner}\n{event.cursor}".encode(), digest_size=10).hexdigest()
    return f"evt_{digest}"


def occurrence(event: Event, *, cursor: int | None = None) -> dict[str, Any]:
    """The `EventOccurrence` of `event`; with `cursor` (push and webhook), the position
    after it."""
    found: dict[str, Any] = {
        "eventId": event_id(event),
        "name": str(event.type),
        "timestamp": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": event.payload,
    }
    if cursor is not None:
        found["cursor"] = str(cursor)
    return found
