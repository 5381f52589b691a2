"""Events a PostgreSQL transaction appends at its end, drafted as `store.plans` drafts them
(payloads made safe for `jsonb`, the written event carrying the payload as stored), and the
events as written once their cursors are known."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from wakecall.models import Event
from wakecall.store.plans import Drafts, EndMark, EventDraft, place_ends
from wakecall.store.postgres.rows import _dumps

#: Events as this store writes them: `jsonb` holds no NUL and no NaN (see `rows._dumps`), so
#: the written event carries its payload as read back from the text stored.
_DRAFTS = Drafts(_dumps, read_back=True)


def _place_ends(pending: Sequence[EventDraft | EndMark], announced: set[str]) -> list[EventDraft]:
    """`plans.place_ends` with this store's drafts."""
    return place_ends(pending, announced, _DRAFTS)


def _written(pending: Sequence[EventDraft], cursors: Sequence[asyncpg.Record]) -> list[Event]:
    """The events as appended, with their cursors (rows of one cursor each, in event order)."""
    return _written_cursors(pending, [r[0] for r in cursors])


def _written_cursors(pending: Sequence[EventDraft], cursors: Sequence[int]) -> list[Event]:
    """The events as appended, with their cursors (in event order)."""
    return [p.written(c) for p, c in zip(pending, cursors, strict=True)]
