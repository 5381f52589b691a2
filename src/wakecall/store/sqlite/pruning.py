"""The SQLite store's retention: finished tasks, old runs, events and deliveries pruned, a
slice at a time.

Each slice is a transaction of its own that ends within the batch budget (`budget`), so a
prune of a long history never holds the store's thread (nor the file's write lock) for long:
the calls that come meanwhile run between its slices. Runs go by two rules, each read from
an index: those finished before the age cutoff, oldest first (`runs_finished`); then, task by
task among the tasks that have runs, the finished runs beyond the newest `runs_per_task`, only
for a task whose `runs_per_task + 1`-th newest run exists (one probe of `runs_task`)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from wakecall.store.base import PruneCounts
from wakecall.store.flow import MAX_PERIOD
from wakecall.store.sqlite.budget import BATCH_SECONDS
from wakecall.store.sqlite.connection import StoreConnection
from wakecall.store.sqlite.rows import _IN_CHUNK, _us

#: Rows deleted per statement within a slice.
_ROWS = 16
_TERMINAL = "status NOT IN ('queued', 'running')"

T = TypeVar("T")


class _SliceEnd:
    """When a slice, begun now, ends: its budget spent, or, once it has done a quarter of
    it, as soon as a call that someone waits for (a tool's) is queued behind it. The call
    waits for a statement or two, not a whole slice; and the prune, which calls in a steady
    stream would otherwise cut to a statement a slice, keeps a share of the thread."""

    def __init__(
        self,
        calls_waiting: Callable[[], bool],
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        begun = clock()
        self._deadline = begun + BATCH_SECONDS
        self._yields_from = begun + BATCH_SECONDS / 4
        self._calls_waiting = calls_waiting
        self._clock = clock

    def __call__(self) -> bool:
        now = self._clock()
        return now >= self._deadline or (now >= self._yields_from and self._calls_waiting())


def _delete_runs(conn: sqlite3.Connection, ids: Sequence[str]) -> None:
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        marks = ", ".join("?" * len(chunk))
        conn.execute(f"DELETE FROM attempts WHERE run_id IN ({marks})", chunk)
        conn.execute(f"DELETE FROM runs WHERE id IN ({marks})", chunk)


def _old_runs_slice(
    conn: sqlite3.Connection, *, cutoff: int, waiting: Callable[[], bool]
) -> tuple[int, bool]:
    """Delete finished runs older than `cutoff`, oldest first, until the slice ends: how
    many, and whether some may be left."""
    ended = _SliceEnd(waiting)
    deleted = 0
    while True:
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM runs WHERE finished_at IS NOT NULL AND finished_at < ? "
                f"AND {_TERMINAL} ORDER BY finished_at LIMIT ?",
                (cutoff, _ROWS),
            )
        ]
        _delete_runs(conn, ids)
        deleted += len(ids)
        if len(ids) < _ROWS:
            return deleted, False
        if ended():
            return deleted, True


def _over_count_slice(
    conn: sqlite3.Connection, *, after: str, keep: int, waiting: Callable[[], bool]
) -> tuple[int, str | None]:
    """From the task after `after` on, in id order, delete each task's finished runs beyond
    its newest `keep`, until the slice ends: how many, and the task to go on after (None
    when every task was looked at). Only tasks that have runs are visited, each found by a
    seek of `runs_task`: a store of a million tasks and few runs costs a few probes, not a
    million."""
    ended = _SliceEnd(waiting)
    deleted = 0
    while True:
        found = conn.execute(
            "SELECT task_id FROM runs WHERE task_id > ? ORDER BY task_id LIMIT 1", (after,)
        ).fetchone()
        if found is None:
            return deleted, None
        task_id = found[0]
        over = conn.execute(
            "SELECT 1 FROM runs WHERE task_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
            (task_id, keep),
        ).fetchone()
        while over is not None:
            ids = [
                r[0]
                for r in conn.execute(
                    f"SELECT id FROM runs WHERE task_id = ? AND {_TERMINAL} "
                    "ORDER BY id DESC LIMIT ? OFFSET ?",
                    (task_id, _ROWS, keep),
                )
            ]
            _delete_runs(conn, ids)
            deleted += len(ids)
            if len(ids) < _ROWS:
                break
            if ended():
                return deleted, after  # this task again, in the next slice
        after = task_id
        if ended():
            return deleted, after


def _rows_slice(
    conn: sqlite3.Connection, *, delete: str, cutoff: int, waiting: Callable[[], bool]
) -> tuple[int, bool]:
    """Delete with `delete` (which takes the cutoff and a row limit) until fewer rows than
    the limit go or the slice ends: how many, and whether some may be left."""
    ended = _SliceEnd(waiting)
    deleted = 0
    while True:
        gone = conn.execute(delete, (cutoff, _ROWS * 5)).rowcount
        deleted += gone
        if gone < _ROWS * 5:
            return deleted, False
        if ended():
            return deleted, True


#: A finished task goes once it ended before the cutoff, has no run that is unfinished or
#: finished since, and no task depends on it (a chain keeps its upstream).
_FINISHED_TASKS = (
    "SELECT id, updated_at FROM tasks t WHERE status IN ('completed', 'expired') "
    "AND updated_at < ? AND (updated_at, id) > (?, ?) "
    "AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.task_id = t.id "
    "  AND (r.finished_at IS NULL OR r.finished_at >= ?)) "
    "AND NOT EXISTS (SELECT 1 FROM tasks d WHERE d.depends_on = t.id) "
    "ORDER BY updated_at, id LIMIT ?"
)


def _finished_tasks_slice(
    conn: sqlite3.Connection,
    *,
    cutoff: int,
    after: tuple[int, str],
    waiting: Callable[[], bool],
) -> tuple[int, tuple[int, str] | None]:
    """Delete finished tasks that ended before `cutoff`, oldest first from `after` on, with
    their runs, until the slice ends: how many, and where to go on (None: all seen)."""
    ended = _SliceEnd(waiting)
    deleted = 0
    while True:
        rows = conn.execute(_FINISHED_TASKS, (cutoff, *after, cutoff, _ROWS)).fetchall()
        for task_id, _ in rows:
            _delete_finished_task(conn, task_id)
        deleted += len(rows)
        if len(rows) < _ROWS:
            return deleted, None
        after = (rows[-1][1], rows[-1][0])
        if ended():
            return deleted, after


def _delete_finished_task(conn: sqlite3.Connection, task_id: str) -> None:
    ids = [r[0] for r in conn.execute("SELECT id FROM runs WHERE task_id = ?", (task_id,))]
    _delete_runs(conn, ids)
    conn.execute("DELETE FROM trigger_events WHERE task_id = ?", (task_id,))
    # Pending deliveries keep their signing secrets until they are done.
    conn.execute(
        "DELETE FROM callback_secrets WHERE task_id = ? AND NOT EXISTS (SELECT 1 FROM "
        "deliveries d WHERE d.task_id = ? AND d.status = 'pending')",
        (task_id, task_id),
    )
    conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))


_EVENTS = (
    "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE created_at < ? LIMIT ?)"
)
_DELIVERIES = (
    "DELETE FROM deliveries WHERE rowid IN (SELECT rowid FROM deliveries "
    "WHERE status != 'pending' AND created_at < ? LIMIT ?)"
)
#: The starts a rate limit looks back on: none further back than its longest period.
_FLOW_STARTS = (
    "DELETE FROM flow_starts WHERE rowid IN (SELECT rowid FROM flow_starts "
    "WHERE started_at <= ? LIMIT ?)"
)
#: Event ids are remembered (against redelivery) as long as events are kept.
_TRIGGER_EVENTS = (
    "DELETE FROM trigger_events WHERE (task_id, event_id) IN (SELECT task_id, event_id "
    "FROM trigger_events WHERE received_at < ? LIMIT ?)"
)


class Pruning(StoreConnection):
    """The retention of `SQLiteStore`."""

    async def _bulk(self, work: Callable[..., T], **arguments: Any) -> T:
        """One slice, `work(conn, **arguments)`, told when a call waits behind it."""
        sliced = partial(work, waiting=self._calls_waiting, **arguments)
        return await self._tx(sliced, bulk=True, background=True)

    def _calls_waiting(self) -> bool:
        # A closed store has no thread: `_tx` then refuses the slice with its own error.
        thread = self._thread
        return thread is not None and thread.calls_waiting()

    async def prune(
        self,
        now: datetime,
        *,
        runs_per_task: int,
        run_max_age: timedelta,
        event_max_age: timedelta,
        task_max_age: timedelta | None = None,
    ) -> PruneCounts:
        run_cutoff = _us(now - run_max_age)
        event_cutoff = _us(now - event_max_age)
        tasks = 0
        if task_max_age is not None:
            task_cutoff = _us(now - task_max_age)
            place: tuple[int, str] | None = (-1, "")
            while place is not None:
                deleted, place = await self._bulk(
                    _finished_tasks_slice, cutoff=task_cutoff, after=place
                )
                tasks += deleted
        runs = 0
        more = True
        while more:
            deleted, more = await self._bulk(_old_runs_slice, cutoff=run_cutoff)
            runs += deleted
        after: str | None = ""
        while after is not None:
            deleted, after = await self._bulk(_over_count_slice, after=after, keep=runs_per_task)
            runs += deleted
        # Each owner's horizon first: a reader's position older than it may skip events.
        await self._tx(partial(_record_horizons, cutoff=event_cutoff), bulk=True, background=True)
        events = 0
        for delete in (_EVENTS, _DELIVERIES, _TRIGGER_EVENTS):
            more = True
            while more:
                deleted, more = await self._bulk(_rows_slice, delete=delete, cutoff=event_cutoff)
                if delete is _EVENTS:
                    events += deleted
        more = True
        while more:
            _, more = await self._bulk(
                _rows_slice, delete=_FLOW_STARTS, cutoff=_us(now - MAX_PERIOD)
            )
        return PruneCounts(runs=runs, events=events, tasks=tasks)


def _record_horizons(conn: sqlite3.Connection, *, cutoff: int) -> tuple[int, bool]:
    """Raise each owner's pruned horizon to its newest event older than `cutoff`."""
    done = conn.execute(
        "INSERT INTO event_horizons (owner, pruned_through) "
        "SELECT owner, max(cursor) FROM events WHERE created_at < ? GROUP BY owner "
        "ON CONFLICT (owner) DO UPDATE SET "
        "pruned_through = max(pruned_through, excluded.pruned_through)",
        (cutoff,),
    ).rowcount
    return done, False
