"""The SQLite store's connection: calls and write transactions on the store's own thread,
the retries of a file locked by another process, checkpoints of the write-ahead log on a
thread, opening and closing, watching for other writers, and the events a transaction
appends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from wakecall.errors import DatabaseBusy, NotAWakecallDatabase, StoreError
from wakecall.models import Event
from wakecall.store.base import RESYNC, HintListener, NewEvent
from wakecall.store.flow import FlowGates
from wakecall.store.json_text import encode
from wakecall.store.plans import Drafts, EventDraft
from wakecall.store.sqlite.budget import Budget
from wakecall.store.sqlite.migrations import APPLICATION_ID, SCHEMA_VERSION, migrate
from wakecall.store.sqlite.rows import (
    _DELIVERY_COLUMNS,
    _EVENT_COLUMNS,
    _IN_CHUNK,
    _dt_req,
    _us,
)
from wakecall.tracecontext import trace_columns

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Events as this store writes them: payloads encoded as they are (SQLite text holds anything
#: JSON does), and the written event carrying the payload as given.
_DRAFTS = Drafts(encode)

#: The write-ahead log is checkpointed (on a thread) when, looked at every this many commits,
#: it has grown past this size (SQLite's own default is about 4 MB).
_CHECKPOINT_EVERY = 64
_CHECKPOINT_BYTES = 4 * 1024 * 1024
#: Past this size every write waits for the running checkpoint (see `_checkpoint_if_big`);
#: bulk writes (the prune's slices) always do.
_CHECKPOINT_HOLD_ALL_BYTES = 256 * 1024 * 1024
#: When the log starts over, SQLite cuts its file back to this size if it grew past it
#: (without it the file keeps its largest size for good). Not smaller: a file cut short and
#: grown again makes the next checkpoints' fsyncs slow.
_LOG_KEPT_BYTES = 64 * 1024 * 1024
#: A checkpoint copies the log in passes, each what was written during the one before, until
#: a pass finds at most this many pages; the writer copies the rest itself (`_copy_tail`).
_TAIL_PAGES = 256
_CHECKPOINT_PASSES = 8


class _NotBegun(Exception):
    """BEGIN IMMEDIATE found the write lock taken by another connection."""


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


class _Job:
    """One call handed to the store's thread, and the loop to tell when it is done."""

    __slots__ = ("conn", "future", "loop", "work")

    def __init__(
        self,
        work: Callable[[sqlite3.Connection], Any],
        conn: sqlite3.Connection,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
    ) -> None:
        self.work = work
        self.conn = conn
        self.loop = loop
        self.future = future


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class StoreThread:
    """The one thread that runs a store's calls on its connection, one after the other: the
    event loop waits for a call's answer, never for SQLite itself. A call, once handed over,
    runs to its end whatever its caller does (as a sent statement does on a server), so a
    transaction is never cut in half.

    Calls go in two lanes, each in the order handed over: a call someone waits for (a tool's)
    goes before the engine's `background` passes still waiting, so during a burst it waits
    for the one batch under way (`budget.BATCH_SECONDS`), not for every pass queued; after
    `URGENT_IN_A_ROW` of them a waiting pass goes, so a flood of calls never starves the
    engine (its lease renewals among its passes). Calls in flight at once are independent
    (each caller awaits its own), so their order is free."""

    #: Calls taken before a waiting `background` one while both lanes hold calls.
    URGENT_IN_A_ROW = 8

    def __init__(self, name: str) -> None:
        self._ready = threading.Condition()
        self._urgent: deque[_Job] = deque()
        self._later: deque[_Job | None] = deque()
        self._urgent_taken = 0
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _next(self) -> _Job | None:
        with self._ready:
            while not self._urgent and not self._later:
                self._ready.wait()
            if self._urgent and (not self._later or self._urgent_taken < self.URGENT_IN_A_ROW):
                self._urgent_taken += 1
                return self._urgent.popleft()
            self._urgent_taken = 0
            return self._later.popleft()

    def _serve(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            try:
                result, error = job.work(job.conn), None
            except BaseException as exc:  # handed to the caller, raised there
                result, error = None, exc
            # A closed loop (RuntimeError) has no one waiting any more.
            with contextlib.suppress(RuntimeError):
                job.loop.call_soon_threadsafe(_settle, job.future, result, error)
            del job, result, error

    async def run(
        self,
        work: Callable[[sqlite3.Connection], T],
        conn: sqlite3.Connection,
        *,
        background: bool = False,
    ) -> T:
        """`work(conn)` on the thread (after the calls that are not `background`, when it is);
        its result, or its exception raised here."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._hand_over(_Job(work, conn, loop, future), background=background)
        with anyio.CancelScope(shield=True):
            result = await future
        return result

    def _hand_over(self, job: _Job | None, *, background: bool) -> None:
        with self._ready:
            if background or job is None:
                self._later.append(job)
            else:
                self._urgent.append(job)
            self._ready.notify()

    def calls_waiting(self) -> bool:
        """Whether a call someone waits for is queued (asked by bulk work on the thread,
        which then ends its slice early)."""
        return bool(self._urgent)

    async def stop(self) -> None:
        """End the thread once the calls handed over before are done."""
        self._hand_over(None, background=True)
        await anyio.to_thread.run_sync(self._thread.join)


class StoreConnection:
    """The connection of a `SQLiteStore` and the transactions on it."""

    def __init__(
        self, path: str | Path, *, busy_timeout: float = 5.0, watch_interval: float = 1.0
    ) -> None:
        self.path = str(path)
        self.busy_timeout = busy_timeout
        self.watch_interval = watch_interval
        self._conn: sqlite3.Connection | None = None
        self._thread: StoreThread | None = None
        #: A second connection, for reads only, with a thread of its own (None in memory).
        self._reader: sqlite3.Connection | None = None
        self._reader_thread: StoreThread | None = None
        #: The writes handed over and not ended yet, by number (see `_read`).
        self._writes_begun = 0
        self._writes_open: set[int] = set()
        self._write_ended = anyio.Event()
        #: The sizes of batches of fires and of finished runs (see `budget`).
        self._fire_budget = Budget()
        #: Rate gates found closed, between passes (see `store.flow`).
        self._flow = FlowGates()
        self._finish_budget = Budget()
        self._commits = 0
        self._checkpointer: threading.Thread | None = None
        #: The size of the write-ahead log when the running checkpoint began, or later while
        #: it ran (read only while a checkpoint runs; see `_tx`).
        self._held_at = 0
        #: A checkpoint ended and left the log's tail for the writer (see `_copy_tail`).
        self._tail_waiting = False
        #: The events (and callback deliveries) the running transaction appends, written in
        #: one statement each before it commits (see `_append_event`).
        self._event_rows: list[tuple[Any, ...]] = []
        self._delivery_rows: list[tuple[Any, ...]] = []
        #: Each owner's last event cursor as the running transaction moved it.
        self._owner_cursors: dict[str, int] = {}
        #: New owners' cursors start above this (see `schema/006_owner_cursors.sql`).
        self._cursor_floor = 0

    # --- plumbing -------------------------------------------------------------------------
    async def _call(
        self, work: Callable[[sqlite3.Connection], T], *, background: bool = False
    ) -> T:
        """Run `work(conn)` on the store's thread, with the connection that writes. Reads
        begun later wait for it to end, unless it is `background` work (the engine's passes,
        see `_read`)."""
        if background:
            return await self._run(work, self._conn, self._thread, background=True)
        number = self._writes_begun
        self._writes_begun += 1
        self._writes_open.add(number)
        try:
            return await self._run(work, self._conn, self._thread)
        finally:
            self._writes_open.discard(number)
            ended, self._write_ended = self._write_ended, anyio.Event()
            ended.set()

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work(conn)`, a read, with the connection that only reads, on its own thread:
        in WAL mode a read needs no lock, so it never waits for a batch of the engine's writes
        under way. It does wait for the other writes handed over before it (a task created,
        then listed), so it sees them."""
        if self._reader is None:  # an in-memory store: one connection
            return await self._call(work)
        before = self._writes_begun
        while self._writes_open and min(self._writes_open) < before:
            await self._write_ended.wait()
        return await self._run(work, self._reader, self._reader_thread)

    async def _run(
        self,
        work: Callable[[sqlite3.Connection], T],
        conn: sqlite3.Connection | None,
        thread: StoreThread | None,
        *,
        background: bool = False,
    ) -> T:
        """Run `work(conn)` on `thread`. A read (or a transaction that could not begin) that
        finds the file locked by another process is tried again after a pause, for up to
        `busy_timeout` seconds."""
        if conn is None or thread is None:
            raise StoreError("the store is not open; call open() first")
        give_up: float | None = None
        pause = 0.001
        while True:
            try:
                return await thread.run(work, conn, background=background)
            except _NotBegun:
                pass  # the write lock is another process's: nothing was done, try again
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise StoreError(f"{self.path}: {exc}") from exc
                if conn.in_transaction:  # never retried halfway through a transaction
                    raise DatabaseBusy(self.path, self.busy_timeout) from exc
            except sqlite3.IntegrityError:
                raise
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"{self.path}: {exc}") from exc
            now = anyio.current_time()
            if give_up is None:
                give_up = now + self.busy_timeout
            elif now >= give_up:
                raise DatabaseBusy(self.path, self.busy_timeout)
            await anyio.sleep(pause)
            pause = min(pause * 2, 0.05)
            if conn not in (self._conn, self._reader):
                raise StoreError("the store was closed")

    async def _tx(
        self,
        work: Callable[[sqlite3.Connection], T],
        *,
        bulk: bool = False,
        background: bool = False,
    ) -> T:
        """Run `work(conn)` inside BEGIN IMMEDIATE … COMMIT, rolled back on any error. A `bulk`
        write (one slice of many) waits for a checkpoint under way; reads need not
        wait for a `background` one (see `_call`)."""
        while self._checkpointing():
            if not bulk and self._held_at < _CHECKPOINT_HOLD_ALL_BYTES:
                break
            await anyio.sleep(0.001)

        def body(conn: sqlite3.Connection) -> T:
            if self._tail_waiting:
                self._copy_tail(conn)
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if _is_busy(exc):
                    raise _NotBegun from exc
                raise
            try:
                result = work(conn)
                self._write_appended(conn)
            except BaseException:
                self._forget_appended()
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            self._commits += 1
            if self._commits % _CHECKPOINT_EVERY == 0:
                self._checkpoint_if_big()
            return result

        return await self._call(body, background=background)

    def _checkpoint_if_big(self) -> None:
        """Copy the write-ahead log back into the file on a thread of its own once it has
        grown past a few megabytes. SQLite would otherwise do it inside a commit, which would
        stall every call waiting on the store's thread for the copy and its fsync.

        The log starts over from its beginning only when a write begins after a checkpoint
        that copied all of it, and writes in a steady stream keep missing that moment: the
        checkpoint ends with what the writer copies itself (`_copy_tail`). So that this tail
        is short, bulk writes (the prune's) wait, the loop free, while a checkpoint runs; past
        `_CHECKPOINT_HOLD_ALL_BYTES` (a slow copy on a busy machine) every write does, which
        bounds the log (the size is looked at again while a checkpoint runs)."""
        if self.path == ":memory:":
            return
        try:
            size = os.stat(self.path + "-wal").st_size
        except OSError:
            return
        if self._checkpointing():
            # A slow copy (a busy machine) while the log keeps growing: writes wait for it
            # once the log passes the bounds, as if it had begun now.
            self._held_at = max(self._held_at, size)
            return
        if size < _CHECKPOINT_BYTES:
            return
        self._held_at = size
        self._checkpointer = threading.Thread(
            target=self._checkpoint, name="wakecall-sqlite-checkpoint", daemon=True
        )
        self._checkpointer.start()

    def _checkpointing(self) -> bool:
        return self._checkpointer is not None and self._checkpointer.is_alive()

    def _checkpoint(self) -> None:
        """Copy the log back in passes, each taking what was written during the one before,
        until a pass finds little left; that last little the writer copies (`_copy_tail`)."""
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=self.busy_timeout)
            try:
                copied_before = 0
                for _ in range(_CHECKPOINT_PASSES):
                    # PASSIVE: never waits for (nor blocks) readers or writers; what it cannot
                    # copy now is copied next time.
                    busy, pages, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if busy or pages < 0:
                        return
                    # A log that started over meanwhile counts its pages from zero again.
                    fresh = copied - copied_before if copied >= copied_before else copied
                    copied_before = copied
                    if fresh <= _TAIL_PAGES:
                        break
            finally:
                conn.close()
        except sqlite3.Error as exc:
            log.warning("checkpointing %s failed (retried later): %s", self.path, exc)
            return
        self._tail_waiting = True

    def _copy_tail(self, conn: sqlite3.Connection) -> None:
        """On the writer's thread, before a transaction begins: copy what the log gained
        since the checkpoint's last pass (a few pages). The log then holds nothing that is not
        in the file, so the transaction starts it over from its beginning, which a checkpoint
        alone never brings about while writes keep coming: the log's file would grow for
        good, and every write wait for each checkpoint once it passed the bounds."""
        self._tail_waiting = False
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            log.warning("checkpointing %s failed (retried later): %s", self.path, exc)

    # --- life cycle -----------------------------------------------------------------------
    async def open(self) -> None:
        if self._conn is not None:
            return
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            # timeout=0: a lock held by another process is waited for by `_call`, with the loop
            # free meanwhile, never inside SQLite.
            conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=0, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        self._conn = conn
        self._thread = StoreThread(f"wakecall-sqlite {Path(self.path).name}")
        try:
            await self._call(self._prepare)
            if self.path != ":memory:":
                self._reader = sqlite3.connect(
                    self.path, isolation_level=None, timeout=0, check_same_thread=False
                )
                self._reader_thread = StoreThread(f"wakecall-sqlite-read {Path(self.path).name}")
                await self._read(lambda c: c.execute("PRAGMA query_only = ON"))
        except BaseException:
            await self.close()
            raise

    def _prepare(self, conn: sqlite3.Connection) -> None:
        try:
            # One read transaction, so all three come from one state of the file (another
            # process may be creating it meanwhile).
            conn.execute("BEGIN")
            try:
                app_id = conn.execute("PRAGMA application_id").fetchone()[0]
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                tables = conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                ).fetchone()[0]
            finally:
                conn.execute("ROLLBACK")
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
                raise  # another process is creating or migrating it: `_call` tries again
            raise NotAWakecallDatabase(self.path, str(exc)) from exc
        if app_id != APPLICATION_ID and (app_id != 0 or tables):
            raise NotAWakecallDatabase(
                self.path, f"it holds {tables} tables of another application"
            )
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this wakecall "
                f"understands ({SCHEMA_VERSION}); upgrade wakecall"
            )
        if self.path != ":memory:":
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                log.warning("SQLite refused WAL mode for %s (mode %s)", self.path, mode)
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # see _checkpoint_if_big
        conn.execute(f"PRAGMA journal_size_limit = {_LOG_KEPT_BYTES}")
        conn.execute("PRAGMA foreign_keys = OFF")
        # A write that fires a trigger (the count of live tasks, schema 13) keeps a statement
        # journal for each row it writes; in a temporary file, that cost 14 µs a row, in
        # memory 4 (`benchmarks/analysis.md`, part 12).
        conn.execute("PRAGMA temp_store = MEMORY")
        if version < SCHEMA_VERSION:
            migrate(conn, self.path)
        self._cursor_floor = conn.execute("SELECT value FROM event_cursor_floor").fetchone()[0]

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        reader_thread, self._reader_thread = self._reader_thread, None
        if reader_thread is not None:
            await reader_thread.stop()
        if reader is not None:
            reader.close()
        conn, self._conn = self._conn, None
        thread, self._thread = self._thread, None
        if thread is not None:
            await thread.stop()
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            await anyio.to_thread.run_sync(checkpointer.join)
        if conn is not None:
            conn.close()

    async def schema_version(self) -> int:
        return await self._call(lambda c: c.execute("PRAGMA user_version").fetchone()[0])

    async def watch(self, on_hint: HintListener) -> None:
        """SQLite has no notifications: every `watch_interval` seconds, look whether another
        connection committed (`PRAGMA data_version`) and if so send `RESYNC`, since what changed
        is unknown. Costs one tiny read per interval."""
        seen: int | None = None
        while True:
            try:
                version = await self._call(lambda c: c.execute("PRAGMA data_version").fetchone()[0])
            except StoreError as exc:
                log.debug("watching %s: %s", self.path, exc)
            else:
                if seen is not None and version != seen:
                    on_hint(RESYNC)
                seen = version
            await anyio.sleep(self.watch_interval)

    def _append_event(
        self,
        conn: sqlite3.Connection,
        owner: str,
        event: NewEvent,
        now_us: int,
        callback_url: str | None = None,
    ) -> Event:
        """Append one event (and its callback delivery) in the running transaction."""
        (written,) = self._append_drafts(
            conn, [_DRAFTS.draft(owner, event, _dt_req(now_us), callback_url)]
        )
        return written

    def _append_drafts(self, conn: sqlite3.Connection, drafts: Sequence[EventDraft]) -> list[Event]:
        """Append events (and their callback deliveries) in the running transaction, in
        order. Each cursor is the owner's next (`_next_cursor`), which no one else can move
        while this transaction holds the write lock; the rows are written together just
        before the commit (`_write_appended`), one statement for a whole batch of events."""
        written = []
        for draft in drafts:
            cursor = self._next_cursor(conn, draft.owner)
            at = _us(draft.created_at)
            kind = str(draft.event.type)
            task_id = draft.event.task_id
            self._event_rows.append(
                (cursor, draft.owner, kind, task_id, draft.event.run_id, at, draft.payload)
            )
            if draft.delivery_id is not None:
                parent, state = trace_columns(draft.trace)
                self._delivery_rows.append(
                    (draft.delivery_id, draft.owner, task_id, cursor, kind, draft.url,
                     draft.body, at, at, parent, state)
                )  # fmt: skip
            written.append(draft.written(cursor))
        return written

    def _next_cursor(self, conn: sqlite3.Connection, owner: str) -> int:
        """The owner's next event cursor: one more than its last, counted per owner so that
        a cursor tells nothing of other owners' events."""
        last = self._owner_cursors.get(owner)
        if last is None:
            # Outside `_tx` the rows would wait for someone else's commit, under stale cursors.
            assert conn.in_transaction, "events are appended inside a write transaction (_tx)"
            row = conn.execute(
                "SELECT last_cursor FROM event_owners WHERE owner = ?", (owner,)
            ).fetchone()
            last = self._cursor_floor if row is None else row[0]
        self._owner_cursors[owner] = last + 1
        return last + 1

    def _write_appended(self, conn: sqlite3.Connection) -> None:
        """Write the events and deliveries `_append_event` took in this transaction, and the
        owners' last cursors."""
        if self._event_rows:
            conn.executemany(
                "INSERT INTO event_owners (owner, last_cursor) VALUES (?, ?) "
                "ON CONFLICT (owner) DO UPDATE SET last_cursor = excluded.last_cursor",
                list(self._owner_cursors.items()),
            )
            conn.executemany(
                f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                self._event_rows,
            )
        if self._delivery_rows:
            conn.executemany(
                f"INSERT INTO deliveries ({_DELIVERY_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, NULL, NULL, NULL, NULL, ?, ?)",
                self._delivery_rows,
            )
        self._forget_appended()

    def _forget_appended(self) -> None:
        self._event_rows = []
        self._delivery_rows = []
        self._owner_cursors = {}

    @staticmethod
    def _rows_by_id(
        conn: sqlite3.Connection, select: str, ids: Sequence[str], *, column: str = "id"
    ) -> list[Sequence[Any]]:
        """`select` (a query without WHERE) for the rows whose `column` is one of `ids`, in
        chunks."""
        rows: list[Sequence[Any]] = []
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            rows += conn.execute(
                f"{select} WHERE {column} IN ({', '.join('?' * len(chunk))})", chunk
            ).fetchall()
        return rows
