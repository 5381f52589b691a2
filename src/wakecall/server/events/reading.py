"""Reading the owner's event log for one subscription `(name, arguments)` from a cursor: the
position space is the log's, the one `get_events` reads (a cursor is its decimal text)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from wakecall.models import Event
from wakecall.server.events.catalog import matches
from wakecall.store.base import Store

__all__ = ["Start", "parse_cursor", "read_matching", "start_at"]

#: Events read per query, and read at most per request (a request that read this many without
#: filling its page answers with `hasMore`).
PAGE = 200
SCAN_LIMIT = 2000


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
