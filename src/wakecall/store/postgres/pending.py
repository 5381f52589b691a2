"""Events a PostgreSQL transaction appends at its end (`_PendingEvent`), where an ended task's
announcement goes among them (`_EndMark`), and the events as written once their cursors are
known."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from wakecall.ids import new_id
from wakecall.models import CALLBACK_EVENTS, Event, EventType, Task, task_event_payload
from wakecall.store.base import NewEvent
from wakecall.store.postgres.rows import _dumps


class _PendingEvent:
    """An event to append at the end of a transaction, with the callback delivery it creates
    when its task has a `callback_url`; its cursor is known once written."""

    __slots__ = ("body", "created_at", "delivery_id", "event", "owner", "payload", "url")

    def __init__(
        self, owner: str, event: NewEvent, created_at: datetime, callback_url: str | None = None
    ) -> None:
        self.owner = owner
        self.event = event
        self.created_at = created_at.astimezone(UTC)
        self.payload = _dumps(dict(event.payload))
        self.url: str | None = None
        self.delivery_id: str | None = None
        self.body: str | None = None
        if callback_url and event.type in CALLBACK_EVENTS:
            # The exact bytes every attempt sends: {"event", "timestamp", **payload}.
            stamp = self.created_at.isoformat().replace("+00:00", "Z")
            head = f'{{"event": {json.dumps(str(event.type))}, "timestamp": "{stamp}"'
            rest = self.payload[1:]
            self.body = head + (", " + rest if rest != "}" else "}")
            self.url = callback_url
            self.delivery_id = new_id("msg")

    def written(self, cursor: int) -> Event:
        return Event(
            cursor=cursor,
            owner=self.owner,
            type=self.event.type,
            task_id=self.event.task_id,
            run_id=self.event.run_id,
            created_at=self.created_at,
            payload=json.loads(self.payload),
        )


class _EndMark:
    """Where a task's `task.expired` goes in a transaction's events, if it is announced."""

    __slots__ = ("at", "task")

    def __init__(self, task: Task, at: datetime) -> None:
        self.task = task
        self.at = at


def _place_ends(
    pending: Sequence[_PendingEvent | _EndMark], announced: set[str]
) -> list[_PendingEvent]:
    """The events in order, each announced task's `task.expired` at its last mark."""
    last = {p.task.id: i for i, p in enumerate(pending) if isinstance(p, _EndMark)}
    out: list[_PendingEvent] = []
    for i, p in enumerate(pending):
        if not isinstance(p, _EndMark):
            out.append(p)
        elif p.task.id in announced and last[p.task.id] == i:
            payload = task_event_payload(p.task, p.task.end_reason)
            out.append(
                _PendingEvent(
                    p.task.owner,
                    NewEvent(EventType.TASK_EXPIRED, p.task.id, None, payload),
                    p.at,
                    p.task.callback_url,
                )
            )
    return out


def _written(pending: Sequence[_PendingEvent], cursors: Sequence[asyncpg.Record]) -> list[Event]:
    """The events as appended, with their cursors (rows of one cursor each, in event order)."""
    return _written_cursors(pending, [r[0] for r in cursors])


def _written_cursors(pending: Sequence[_PendingEvent], cursors: Sequence[int]) -> list[Event]:
    """The events as appended, with their cursors (in event order)."""
    return [p.written(c) for p, c in zip(pending, cursors, strict=True)]
