"""The embedded store: one SQLite file in WAL mode.

Each store method is one transaction, run as a single function directly on the event loop's
thread. SQLite on a local file answers a batch in microseconds to a few milliseconds, which is
less than handing the work to another thread and back costs (two thread switches and a fight
for the GIL per call), and a function that never awaits can never interleave with another
coroutine's transaction. The loop never waits inside SQLite for another process: the
connection's busy timeout is zero, and a write that finds the file locked by another process
(the CLI next to a server) gives the loop back and tries again with backoff, up to
`busy_timeout` seconds. Every claim check is done inside the writing transaction.

Instants are stored as integer microseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import heapq
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from wakecall.errors import (
    Conflict,
    DatabaseBusy,
    LimitReached,
    NotAWakecallDatabase,
    NotFound,
    RunNotFound,
    StoreError,
    TaskNotFound,
)
from wakecall.ids import new_id
from wakecall.models import (
    CALLBACK_EVENTS,
    Attempt,
    AttemptStatus,
    Delivery,
    DeliveryStatus,
    Event,
    EventType,
    Run,
    RunStatus,
    Task,
    TaskStatus,
    Trigger,
    event_type_for,
    retry_policy_from_json,
    run_event_payload,
    task_event_payload,
)
from wakecall.store.base import (
    RESYNC,
    DeliveryOutcome,
    DueTask,
    FirePlan,
    FireResult,
    HintListener,
    NewEvent,
    NewRun,
    NewTask,
    PassResult,
    Planner,
    PruneCounts,
    RunOutcome,
    TaskUpdate,
    TaskWrite,
    TaskWritten,
    Upcoming,
    dependency_run,
    live_tasks_added,
    live_tasks_removed,
    new_run_record,
)

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "SQLiteStore"]

from wakecall.store.rows import ATTEMPT_STATUS_TO_RUN, run_from_row, task_from_row

log = logging.getLogger(__name__)

T = TypeVar("T")

#: PRAGMA application_id of a wakecall database ("WAKE").
APPLICATION_ID = 0x57414B45
SCHEMA_VERSION = 3

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE tasks (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        schedule TEXT NOT NULL,
        timezone TEXT NOT NULL,
        action TEXT NOT NULL,
        retry TEXT NOT NULL,
        timeout_s REAL,
        overlap TEXT NOT NULL,
        max_queued INTEGER NOT NULL,
        catchup TEXT NOT NULL,
        catchup_window_s REAL NOT NULL,
        max_runs INTEGER,
        expires_at INTEGER,
        status TEXT NOT NULL,
        pause_note TEXT,
        callback_url TEXT,
        metadata TEXT NOT NULL,
        idempotency_key TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        next_fire_at INTEGER,
        last_fire_at INTEGER,
        run_count INTEGER NOT NULL DEFAULT 0,
        claimed_by TEXT,
        claim_expires_at INTEGER,
        end_reason TEXT,
        end_announced INTEGER NOT NULL DEFAULT 0
    );
    CREATE UNIQUE INDEX tasks_idempotency ON tasks(owner, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE INDEX tasks_due ON tasks(next_fire_at)
        WHERE status = 'active' AND next_fire_at IS NOT NULL;
    CREATE INDEX tasks_owner ON tasks(owner, id);

    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        task_id TEXT NOT NULL,
        owner TEXT NOT NULL,
        trigger TEXT NOT NULL,
        scheduled_for INTEGER,
        due_at INTEGER NOT NULL,
        status TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        max_attempts INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
        duration_ms INTEGER,
        output TEXT,
        error_message TEXT,
        claimed_by TEXT,
        lease_expires_at INTEGER,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        counts INTEGER NOT NULL DEFAULT 1,
        UNIQUE (task_id, scheduled_for)
    );
    CREATE INDEX runs_queued ON runs(due_at) WHERE status = 'queued';
    CREATE INDEX runs_running ON runs(lease_expires_at) WHERE status = 'running';
    CREATE INDEX runs_task ON runs(task_id, id);
    CREATE INDEX runs_owner ON runs(owner, id);
    CREATE INDEX runs_finished ON runs(finished_at) WHERE finished_at IS NOT NULL;

    CREATE TABLE attempts (
        run_id TEXT NOT NULL,
        number INTEGER NOT NULL,
        status TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        error_message TEXT,
        node TEXT,
        PRIMARY KEY (run_id, number)
    ) WITHOUT ROWID;

    CREATE TABLE events (
        cursor INTEGER PRIMARY KEY AUTOINCREMENT,
        owner TEXT NOT NULL,
        type TEXT NOT NULL,
        task_id TEXT,
        run_id TEXT,
        created_at INTEGER NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE INDEX events_owner ON events(owner, cursor);
    CREATE INDEX events_created ON events(created_at);
    """,
    2: """
    CREATE TABLE deliveries (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        task_id TEXT,
        event_cursor INTEGER NOT NULL,
        event_type TEXT NOT NULL,
        url TEXT NOT NULL,
        body TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER,
        created_at INTEGER NOT NULL,
        last_status INTEGER,
        last_error TEXT,
        delivered_at INTEGER,
        claimed_by TEXT,
        lease_expires_at INTEGER
    );
    CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = 'pending';
    CREATE INDEX deliveries_owner ON deliveries(owner, id);

    CREATE TABLE callback_secrets (
        task_id TEXT NOT NULL,
        secret TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        retires_at INTEGER,
        PRIMARY KEY (task_id, secret)
    ) WITHOUT ROWID;
    """,
    3: """
    ALTER TABLE tasks ADD COLUMN depends_on TEXT;
    ALTER TABLE tasks ADD COLUMN trigger TEXT;
    ALTER TABLE tasks ADD COLUMN condition TEXT;
    CREATE INDEX tasks_depends_on ON tasks(depends_on) WHERE depends_on IS NOT NULL;
    ALTER TABLE runs ADD COLUMN input TEXT;
    CREATE TABLE trigger_events (
        task_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        PRIMARY KEY (task_id, event_id)
    ) WITHOUT ROWID;
    CREATE INDEX trigger_events_received ON trigger_events(received_at);
    -- Claims take queued runs in (due_at, id) order: without the id, a burst of runs due at
    -- one instant is sorted whole on every claim.
    DROP INDEX runs_queued;
    CREATE INDEX runs_queued ON runs(due_at, id) WHERE status = 'queued';
    """,
}

_DELIVERY_COLUMNS = (
    "id, owner, task_id, event_cursor, event_type, url, body, status, attempts, "
    "next_attempt_at, created_at, last_status, last_error, delivered_at, claimed_by"
)

_TASK_COLUMNS = (
    "id, owner, name, kind, schedule, timezone, action, retry, timeout_s, overlap, max_queued, "
    "catchup, catchup_window_s, max_runs, expires_at, status, pause_note, callback_url, "
    "metadata, idempotency_key, created_at, updated_at, next_fire_at, last_fire_at, run_count, "
    "claimed_by, claim_expires_at, end_reason, depends_on, trigger, condition"
)
_RUN_COLUMNS = (
    "id, task_id, owner, trigger, scheduled_for, due_at, status, attempt, max_attempts, "
    "created_at, started_at, finished_at, duration_ms, output, error_message, claimed_by, "
    "lease_expires_at, cancel_requested, input"
)
_RUN_MARKS = ", ".join("?" * (_RUN_COLUMNS.count(",") + 2))  # the columns and `counts`
_EVENT_COLUMNS = "cursor, owner, type, task_id, run_id, created_at, payload"

# Task fields that update_task may set, and how each is written.
_UPDATABLE: dict[str, Callable[[Any], Any]] = {
    "name": str,
    "schedule": lambda v: json.dumps(v),
    "timezone": str,
    "action": lambda v: json.dumps(v),
    "retry": lambda v: v.model_dump_json(),
    "timeout_s": lambda v: v,
    "overlap": str,
    "max_queued": int,
    "catchup": str,
    "catchup_window_s": float,
    "max_runs": lambda v: v,
    "expires_at": lambda v: _us_or_none(v),
    "status": str,
    "pause_note": lambda v: v,
    "callback_url": lambda v: v,
    "metadata": lambda v: json.dumps(v),
    "next_fire_at": lambda v: _us_or_none(v),
    "last_fire_at": lambda v: _us_or_none(v),
    "end_reason": lambda v: v,
    "depends_on": lambda v: v,
    "trigger": lambda v: _json_or_none(v),
    "condition": lambda v: _json_or_none(v),
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: The write-ahead log is checkpointed (on a thread) when, looked at every this many commits,
#: it has grown past this size (SQLite's own default is about 4 MB).
_CHECKPOINT_EVERY = 64
_CHECKPOINT_BYTES = 4 * 1024 * 1024
#: Past this size, writes wait for the running checkpoint (see `_checkpoint_if_big`).
_CHECKPOINT_HOLD_BYTES = 64 * 1024 * 1024

#: Ids per `IN (...)` list, well under SQLite's limit on bound parameters.
_IN_CHUNK = 500


def _us(value: datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _us_or_none(value: datetime | None) -> int | None:
    return None if value is None else _us(value)


@lru_cache(maxsize=4096)
def _dt_req(value: int) -> datetime:
    # Cached: the rows of a batch share their instants (its `now`, a burst's due time).
    return _EPOCH + timedelta(microseconds=value)


def _dt(value: int | None) -> datetime | None:
    return None if value is None else _dt_req(value)


#: `json.dumps(value, default=str)` without building an encoder per call.
_encode = json.JSONEncoder(default=str).encode


def _json_or_none(value: Any) -> str | None:
    return None if value is None else _encode(value)


def _attempts(retry_json: str) -> int:
    return retry_policy_from_json(retry_json).attempts


def _task_from_row(row: Sequence[Any]) -> Task:
    return task_from_row(row, _dt, _dt_req)


def _run_from_row(row: Sequence[Any]) -> Run:
    return run_from_row(row, _dt, _dt_req)


@dataclass(frozen=True, slots=True)
class Births:
    """What `fire_and_start` tells `_record_on`: the due tasks' rows as it read them in this
    transaction (`task_rows`) and as decoded (`tasks`), and the new runs to write already
    running (`run_ids`), leased to the node until `until_us`."""

    run_ids: set[str]
    until_us: int
    task_rows: Mapping[str, tuple[Any, ...]]
    tasks: Mapping[str, Task]


def _task_after_fire(task: Task, update: tuple[Any, ...]) -> Task:
    """`task` after `_record_on`'s UPDATE with `update` (next fire, last fire, runs counted,
    status, end reason, updated at, id), its instants as the store reads them back."""
    next_fire, last_fire, counted, status, end_reason, updated, _ = update
    return task.replace(
        status=TaskStatus(status),
        updated_at=_dt_req(updated),
        next_fire_at=_dt(next_fire),
        last_fire_at=_dt(last_fire),
        run_count=task.run_count + counted,
        claimed_by=None,
        claim_expires_at=None,
        end_reason=end_reason,
    )


def _task_to_row(task: Task) -> tuple[Any, ...]:
    return (
        task.id,
        task.owner,
        task.name,
        task.kind,
        json.dumps(task.schedule),
        task.timezone,
        json.dumps(task.action),
        task.retry.model_dump_json(),
        task.timeout_s,
        str(task.overlap),
        task.max_queued,
        str(task.catchup),
        task.catchup_window_s,
        task.max_runs,
        _us_or_none(task.expires_at),
        str(task.status),
        task.pause_note,
        task.callback_url,
        json.dumps(task.metadata),
        task.idempotency_key,
        _us(task.created_at),
        _us(task.updated_at),
        _us_or_none(task.next_fire_at),
        _us_or_none(task.last_fire_at),
        task.run_count,
        task.claimed_by,
        _us_or_none(task.claim_expires_at),
        task.end_reason,
        task.depends_on,
        _json_or_none(task.trigger),
        _json_or_none(task.condition),
    )


def _delivery_from_row(row: Sequence[Any]) -> Delivery:
    return Delivery(
        id=row[0],
        owner=row[1],
        task_id=row[2],
        event_cursor=row[3],
        event_type=EventType(row[4]),
        url=row[5],
        body=row[6],
        status=DeliveryStatus(row[7]),
        attempts=row[8],
        next_attempt_at=_dt(row[9]),
        created_at=_dt_req(row[10]),
        last_status=row[11],
        last_error=row[12],
        delivered_at=_dt(row[13]),
        claimed_by=row[14],
    )


def _event_from_row(row: Sequence[Any]) -> Event:
    return Event(
        cursor=row[0],
        owner=row[1],
        type=EventType(row[2]),
        task_id=row[3],
        run_id=row[4],
        created_at=_dt_req(row[5]),
        payload=json.loads(row[6]),
    )


def _newest_first(
    columns: str, table: str, filters: Mapping[str, Any], before: str | None, limit: int
) -> tuple[str, list[Any]]:
    """A page query: rows whose columns equal every non-None filter, with id < `before`,
    newest (highest id) first."""
    where = [f"{column} = ?" for column, value in filters.items() if value is not None]
    args = [value for value in filters.values() if value is not None]
    if before is not None:
        where.append("id < ?")
        args.append(before)
    sql = f"SELECT {columns} FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + " ORDER BY id DESC LIMIT ?", [*args, limit]


class _RolledBack(Exception):
    """Raised inside a transaction to roll it back (a dry run) and carry its result out."""

    def __init__(self, result: list[TaskWritten]) -> None:
        super().__init__("rolled back")
        self.result = result


class _NotBegun(Exception):
    """BEGIN IMMEDIATE found the write lock taken by another connection."""


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


class SQLiteStore:
    """`Store` on one SQLite file. `path` may be ":memory:" for a private throwaway store."""

    def __init__(
        self, path: str | Path, *, busy_timeout: float = 5.0, watch_interval: float = 1.0
    ) -> None:
        self.path = str(path)
        self.busy_timeout = busy_timeout
        self.watch_interval = watch_interval
        self._conn: sqlite3.Connection | None = None
        self._commits = 0
        self._checkpointer: threading.Thread | None = None
        self._hold_writes = False
        #: The events (and callback deliveries) the running transaction appends, written in
        #: one statement each before it commits (see `_append_event`).
        self._event_rows: list[tuple[Any, ...]] = []
        self._delivery_rows: list[tuple[Any, ...]] = []
        self._next_cursor: int | None = None

    # --- plumbing -------------------------------------------------------------------------
    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` now, on this thread. A read (or a transaction that could not begin)
        that finds the file locked by another process is tried again after a pause that gives
        the loop back, for up to `busy_timeout` seconds."""
        conn = self._conn
        if conn is None:
            raise StoreError("the store is not open; call open() first")
        give_up: float | None = None
        pause = 0.001
        while True:
            try:
                return fn(conn)
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
            if self._conn is not conn:
                raise StoreError("the store was closed")

    async def _tx(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` inside BEGIN IMMEDIATE … COMMIT, rolled back on any error."""
        while self._hold_writes:
            if not self._checkpointing():
                self._hold_writes = False
                break
            await anyio.sleep(0.001)

        def body(conn: sqlite3.Connection) -> T:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if _is_busy(exc):
                    raise _NotBegun from exc
                raise
            try:
                result = fn(conn)
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

        return await self._call(body)

    def _checkpoint_if_big(self) -> None:
        """Copy the write-ahead log back into the file on a thread of its own once it has
        grown past a few megabytes. SQLite would otherwise do it inside a commit, and with
        the store on the loop's thread that would stall the loop for the copy and its fsync.

        The log starts over from its beginning only when a write begins after a checkpoint
        that copied all of it; writes in a steady stream can keep missing that moment. Past
        `_CHECKPOINT_HOLD_BYTES`, writes therefore wait (the loop free) for the checkpoint
        to end, which bounds the log."""
        if self.path == ":memory:" or self._checkpointing():
            return
        try:
            size = os.stat(self.path + "-wal").st_size
        except OSError:
            return
        if size < _CHECKPOINT_BYTES:
            return
        self._hold_writes = size >= _CHECKPOINT_HOLD_BYTES
        self._checkpointer = threading.Thread(
            target=self._checkpoint, name="wakecall-sqlite-checkpoint", daemon=True
        )
        self._checkpointer.start()

    def _checkpointing(self) -> bool:
        return self._checkpointer is not None and self._checkpointer.is_alive()

    def _checkpoint(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=self.busy_timeout)
            try:
                # PASSIVE: never waits for (nor blocks) readers or writers; what it cannot copy
                # now is copied next time.
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                conn.close()
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
        try:
            await self._call(self._prepare)
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
        conn.execute("PRAGMA foreign_keys = OFF")
        if version < SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Re-read under the write lock: another process may have migrated meanwhile.
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                for target in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in _MIGRATIONS[target].split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    log.info("upgraded %s to schema version %d", self.path, target)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    async def close(self) -> None:
        conn, self._conn = self._conn, None
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

    # --- tasks ----------------------------------------------------------------------------
    async def create_task(self, task: Task) -> tuple[Task, bool]:
        row = _task_to_row(task)

        def fn(conn: sqlite3.Connection) -> tuple[Task, bool]:
            if task.idempotency_key is not None:
                found = conn.execute(
                    f"SELECT {_TASK_COLUMNS} FROM tasks WHERE owner = ? AND idempotency_key = ?",
                    (task.owner, task.idempotency_key),
                ).fetchone()
                if found is not None:
                    return _task_from_row(found), False
            conn.execute(
                f"INSERT INTO tasks ({_TASK_COLUMNS}) VALUES ({', '.join('?' * len(row))})", row
            )
            return task, True

        return await self._tx(fn)

    async def get_task(self, owner: str | None, task_id: str) -> Task:
        def fn(conn: sqlite3.Connection) -> Task:
            return _task_from_row(self._task_row(conn, owner, task_id))

        return await self._call(fn)

    @staticmethod
    def _task_row(conn: sqlite3.Connection, owner: str | None, task_id: str) -> Sequence[Any]:
        if owner is None:
            row = conn.execute(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = ?", (task_id,)
            ).fetchone()
        else:
            row = conn.execute(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = ? AND owner = ?", (task_id, owner)
            ).fetchone()
        if row is None:
            raise TaskNotFound(task_id)
        return row

    async def list_tasks(
        self,
        owner: str | None,
        *,
        status: TaskStatus | None = None,
        kind: str | None = None,
        name_contains: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[Task]:
        where: list[str] = []
        args: list[Any] = []
        if owner is not None:
            where.append("owner = ?")
            args.append(owner)
        if status is not None:
            where.append("status = ?")
            args.append(str(status))
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        if name_contains:
            where.append("instr(lower(name), lower(?)) > 0")
            args.append(name_contains)
        for key, value in (metadata or {}).items():
            where.append("json_extract(metadata, ?) IS NOT NULL")
            where.append("json_extract(metadata, ?) = json_extract(?, '$')")
            path = "$." + json.dumps(str(key))
            args.extend([path, path, json.dumps(value)])
        if after is not None:
            where.append("id > ?")
            args.append(after)
        sql = f"SELECT {_TASK_COLUMNS} FROM tasks"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id LIMIT ?"
        args.append(limit)
        rows = await self._call(lambda c: c.execute(sql, args).fetchall())
        return [_task_from_row(r) for r in rows]

    async def count_tasks(self, owner: str, *, active_only: bool = False) -> int:
        sql = "SELECT count(*) FROM tasks WHERE owner = ?"
        if active_only:
            sql += " AND status IN ('active', 'paused')"
        return await self._call(lambda c: c.execute(sql, (owner,)).fetchone()[0])

    async def update_task(
        self, owner: str | None, task_id: str, changes: Mapping[str, Any], now: datetime
    ) -> Task:
        update = TaskUpdate(task_id, changes)
        return await self._tx(lambda conn: self._update_task_on(conn, owner, update, now))

    async def delete_task(self, owner: str | None, task_id: str) -> list[str]:
        return await self._tx(lambda conn: list(self._delete_task_on(conn, owner, task_id).running))

    async def write_tasks(
        self,
        owner: str,
        writes: Sequence[TaskWrite],
        now: datetime,
        *,
        max_tasks: int | None = None,
        events: Sequence[NewEvent] = (),
        dry_run: bool = False,
    ) -> list[TaskWritten]:
        # Only new tasks can take the owner past its limit (a resume or a patch never adds a
        # live task; a deletion takes one away).
        limited = max_tasks is not None and any(isinstance(w, NewTask) for w in writes)

        def fn(conn: sqlite3.Connection) -> list[TaskWritten]:
            written = [self._write_task(conn, owner, write, now) for write in writes]
            if limited:
                assert max_tasks is not None
                after = self._live_tasks(conn, owner)
                if after > max_tasks and live_tasks_added(written) > live_tasks_removed(written):
                    raise LimitReached(
                        f"owner {owner!r} would hold {after} tasks; the limit is {max_tasks}"
                    )
            by_id = {w.task.id: w.task for w in written if w.task is not None}
            for event in events:
                task = by_id.get(event.task_id or "") or _task_from_row(
                    self._task_row(conn, owner, event.task_id or "")
                )
                self._append_event(conn, owner, event, _us(now), task.callback_url)
            if dry_run:
                raise _RolledBack(written)
            return written

        try:
            return await self._tx(fn)
        except _RolledBack as rolled_back:
            return rolled_back.result

    @staticmethod
    def _live_tasks(conn: sqlite3.Connection, owner: str) -> int:
        return int(
            conn.execute(
                "SELECT count(*) FROM tasks WHERE owner = ? AND status IN ('active', 'paused')",
                (owner,),
            ).fetchone()[0]
        )

    def _write_task(
        self, conn: sqlite3.Connection, owner: str, write: TaskWrite, now: datetime
    ) -> TaskWritten:
        if isinstance(write, NewTask):
            return self._insert_task(conn, owner, write, now)
        if isinstance(write, TaskUpdate):
            return TaskWritten(self._update_task_on(conn, owner, write, now))
        return self._delete_task_on(conn, owner, write.task_id)

    def _insert_task(
        self, conn: sqlite3.Connection, owner: str, write: NewTask, now: datetime
    ) -> TaskWritten:
        task = write.task
        if task.owner != owner:
            raise ValueError(f"task {task.id} belongs to {task.owner!r}, not {owner!r}")
        if task.idempotency_key is not None:
            found = conn.execute(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE owner = ? AND idempotency_key = ?",
                (owner, task.idempotency_key),
            ).fetchone()
            if found is not None:
                return TaskWritten(_task_from_row(found))
        if conn.execute("SELECT 1 FROM tasks WHERE id = ?", (task.id,)).fetchone() is not None:
            raise Conflict(f"a task with id {task.id!r} exists already; choose another id")
        row = _task_to_row(task)
        conn.execute(
            f"INSERT INTO tasks ({_TASK_COLUMNS}) VALUES ({', '.join('?' * len(row))})", row
        )
        if write.callback_secret is not None:
            self._add_secret_on(conn, task.id, write.callback_secret, now, now)
        return TaskWritten(task, created=True)

    def _update_task_on(
        self, conn: sqlite3.Connection, owner: str | None, write: TaskUpdate, now: datetime
    ) -> Task:
        changes = write.changes
        unknown = set(changes) - set(_UPDATABLE)
        if unknown:
            raise ValueError(f"update_task cannot set {sorted(unknown)}")
        current = _task_from_row(self._task_row(conn, owner, write.task_id))
        if write.seen_status is not None and current.status != write.seen_status:
            raise Conflict(
                f"task {current.id} changed meanwhile: it is now {current.status}, not "
                f"{write.seen_status}; read it again and retry"
            )
        sets = [f"{name} = ?" for name in changes] + ["updated_at = ?"]
        values = [_UPDATABLE[name](value) for name, value in changes.items()] + [_us(now)]
        conn.execute(f"UPDATE tasks SET {', '.join(sets)} WHERE id = ?", (*values, current.id))
        if write.callback_secret is not None:
            retire = write.retire_secrets_at or now
            self._add_secret_on(conn, current.id, write.callback_secret, now, retire)
        task = _task_from_row(self._task_row(conn, owner, current.id))
        if "status" in changes and task.status == TaskStatus.EXPIRED:
            self._announce_end_if_idle(conn, task, now)
        return task

    def _delete_task_on(
        self, conn: sqlite3.Connection, owner: str | None, task_id: str
    ) -> TaskWritten:
        task = _task_from_row(self._task_row(conn, owner, task_id))
        running = tuple(
            r[0]
            for r in conn.execute(
                "SELECT id FROM runs WHERE task_id = ? AND status = 'running'", (task_id,)
            )
        )
        conn.execute(
            "DELETE FROM attempts WHERE run_id IN (SELECT id FROM runs WHERE task_id = ?)",
            (task_id,),
        )
        conn.execute("DELETE FROM runs WHERE task_id = ?", (task_id,))
        conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
        # Pending deliveries keep their signing secrets until they are done.
        conn.execute(
            "DELETE FROM callback_secrets WHERE task_id = ? AND NOT EXISTS (SELECT 1 FROM "
            "deliveries d WHERE d.task_id = ? AND d.status = 'pending')",
            (task_id, task_id),
        )
        live = task.status in (TaskStatus.ACTIVE, TaskStatus.PAUSED)
        return TaskWritten(None, running=running, was_live=live)

    @staticmethod
    def _add_secret_on(
        conn: sqlite3.Connection, task_id: str, secret: str, now: datetime, retire: datetime
    ) -> None:
        """A new signing secret; the task's others stop signing at `retire`."""
        retire_us = _us(retire)
        conn.execute(
            "UPDATE callback_secrets SET retires_at = ? WHERE task_id = ? "
            "AND (retires_at IS NULL OR retires_at > ?)",
            (retire_us, task_id, retire_us),
        )
        conn.execute(
            "INSERT INTO callback_secrets (task_id, secret, created_at, retires_at) "
            "VALUES (?, ?, ?, NULL)",
            (task_id, secret, _us(now)),
        )

    # --- fires ----------------------------------------------------------------------------
    async def claim_due_tasks(
        self, node: str, now: datetime, limit: int, lease: timedelta
    ) -> list[DueTask]:
        now_us, until_us = _us(now), _us(now + lease)
        return await self._tx(
            lambda conn: self._claim_due_on(conn, node, now_us, until_us, limit, mark=True)
        )

    @staticmethod
    def _claim_due_on(
        conn: sqlite3.Connection,
        node: str,
        now_us: int,
        until_us: int,
        limit: int,
        *,
        mark: bool,
        rows_out: dict[str, tuple[Any, ...]] | None = None,
    ) -> list[DueTask]:
        """Due tasks unclaimed (or whose claim expired), earliest first, as claimed by `node`;
        with `mark`, the claims are written (for a caller that plans outside the
        transaction). `rows_out` receives each task's row as read."""
        rows = conn.execute(
            f"SELECT {_TASK_COLUMNS} FROM tasks "
            "WHERE status = 'active' AND next_fire_at IS NOT NULL AND next_fire_at <= ? "
            "AND (claimed_by IS NULL OR claim_expires_at < ?) "
            "ORDER BY next_fire_at LIMIT ?",
            (now_us, now_us, limit),
        ).fetchall()
        if not rows:
            return []
        ids = [r[0] for r in rows]
        marks = ", ".join("?" * len(ids))
        if mark:
            conn.execute(
                f"UPDATE tasks SET claimed_by = ?, claim_expires_at = ? WHERE id IN ({marks})",
                (node, until_us, *ids),
            )
        queued: dict[str, int] = {}
        running: dict[str, list[str]] = {}
        for task_id, run_id, status in conn.execute(
            f"SELECT task_id, id, status FROM runs WHERE task_id IN ({marks}) "
            "AND status IN ('queued', 'running')",
            ids,
        ):
            if status == "queued":
                queued[task_id] = queued.get(task_id, 0) + 1
            else:
                running.setdefault(task_id, []).append(run_id)
        if rows_out is not None:
            rows_out.update((r[0], r) for r in rows)
        out = []
        for row in rows:
            task = _task_from_row((*row[:25], node, until_us, *row[27:]))  # as claimed
            out.append(DueTask(task, queued.get(task.id, 0), tuple(running.get(task.id, ()))))
        return out

    async def fire_and_start(
        self,
        node: str,
        now: datetime,
        *,
        limit: int,
        lease: timedelta,
        plan: Planner,
        start_limit: int,
    ) -> PassResult:
        """One transaction: SQLite has one writer at a time, so the tasks read here cannot be
        taken by anyone before the fires are recorded, and need no claim marks.

        The runs to start are chosen before the new runs are written, among the stored queued
        runs and the new ones alike (the same order and overlap rules as `start_due_runs`); a
        new run chosen is written running in its first attempt, and its record and its task's
        are built from the rows written, not read back."""
        now_us, until_us = _us(now), _us(now + lease)

        def fn(conn: sqlite3.Connection) -> PassResult:
            task_rows: dict[str, tuple[Any, ...]] = {}
            due = (
                self._claim_due_on(
                    conn, node, now_us, until_us, limit, mark=False, rows_out=task_rows
                )
                if limit > 0
                else []
            )
            plans = [p for p in map(plan, due) if p is not None]
            chosen: list[str] = []
            born_running: set[str] = set()
            if start_limit > 0:
                overlap = {d.task.id: str(d.task.overlap) for d in due}
                born = [
                    (_us(new.due_at), new.id, made.task_id, overlap[made.task_id])
                    for made in plans
                    if made.instant is None  # its runs due now end as they are written
                    for new in made.runs
                    if new.status == RunStatus.QUEUED and new.due_at <= now
                ]
                chosen = self._choose_runs(conn, now_us, start_limit, born)
                born_ids = {b[1] for b in born}
                born_running = {run_id for run_id in chosen if run_id in born_ids}
            if plans:
                fired, born_started = self._record_on(
                    conn,
                    node,
                    now,
                    plans,
                    claimed=False,
                    start=Births(
                        born_running, until_us, task_rows, {d.task.id: d.task for d in due}
                    ),
                )
            else:
                fired, born_started = FireResult([], [], []), {}
            stored = [run_id for run_id in chosen if run_id not in born_running]
            started_stored = {
                run.id: (run, task)
                for run, task in self._start_chosen_on(conn, node, now_us, until_us, stored)
            }
            started = [
                pair
                for run_id in chosen
                if (pair := born_started.get(run_id) or started_stored.get(run_id)) is not None
            ]
            return PassResult(fired, plans, len(due), started)

        return await self._tx(fn)

    async def record_fires(self, node: str, now: datetime, plans: Sequence[FirePlan]) -> FireResult:
        return await self._tx(lambda conn: self._record_on(conn, node, now, plans, claimed=True)[0])

    def _record_on(
        self,
        conn: sqlite3.Connection,
        node: str,
        now: datetime,
        plans: Sequence[FirePlan],
        *,
        claimed: bool,
        start: Births | None = None,
    ) -> tuple[FireResult, dict[str, tuple[Run, Task]]]:
        """`record_fires` inside the caller's transaction. With `claimed`, a plan counts only
        if `node`'s claim mark is still on its task; without, the caller read the tasks in
        this same transaction.

        With `start`, the tasks' rows are taken from it rather than read again, and the new
        runs it names are written running (attempt 1, leased to `node`) and returned by id
        with their task as it is after the fire.

        The new runs of an instant plan that are due now are written finished, with their
        attempt and event (see `FirePlan.instant`)."""
        now_us = _us(now)
        wanted = list(dict.fromkeys(p.task_id for p in plans))
        # The tasks as decoded before the fire, for the runs born running or ended (their
        # events carry the task): `start` has them all; otherwise those of instant plans.
        decoded: Mapping[str, Task]
        if start is not None:
            decoded = start.tasks
        else:
            instant_ids = list(dict.fromkeys(p.task_id for p in plans if p.instant is not None))
            decoded = {
                r[0]: _task_from_row(r)
                for r in self._rows_by_id(conn, f"SELECT {_TASK_COLUMNS} FROM tasks", instant_ids)
            }
        # The claim and what new runs need; a whole task is read only for the rare plan
        # that writes events (missed fires, wakeups, an end).
        rows: dict[str, Sequence[Any]]
        if start is not None:  # the tasks' whole rows were read in this transaction
            rows = {
                task_id: (r[0], r[25], r[1], r[7], r[15], r[27])
                for task_id in wanted
                if (r := start.task_rows.get(task_id)) is not None
            }
        else:
            rows = {
                r[0]: r
                for r in self._rows_by_id(
                    conn,
                    "SELECT id, claimed_by, owner, retry, status, end_reason FROM tasks",
                    wanted,
                )
            }
        lost: list[str] = []
        accepted: list[tuple[FirePlan, Sequence[Any]]] = []
        for plan in plans:
            row = rows.pop(plan.task_id, None)  # a second plan for a task finds it gone
            if row is None or (claimed and row[1] != node):
                lost.append(plan.task_id)
                continue
            accepted.append((plan, row))
        candidates = [
            (
                new_run_record(
                    row[0],
                    row[2],
                    _attempts(row[3]),
                    new,
                    now,
                    plan.instant_for(new, now),
                ),
                new.counts,
            )
            for plan, row in accepted
            for new in plan.runs
        ]
        running = start.run_ids if start is not None else set()
        lease = (node, start.until_us) if start is not None else None
        run_rows = [
            self._run_row(run, now_us, counts, lease if run.id in running else None)
            for run, counts in candidates
        ]
        cursor = conn.executemany(
            f"INSERT OR IGNORE INTO runs ({_RUN_COLUMNS}, counts) VALUES ({_RUN_MARKS})",
            run_rows,
        )
        # Run ids are new, so a candidate is absent only when its slot had a run already;
        # which ones, is looked up only when some are.
        ids = [run.id for run, _ in candidates]
        if cursor.rowcount == len(candidates):
            inserted = set(ids)
        else:
            inserted = {r[0] for r in self._rows_by_id(conn, "SELECT id FROM runs", ids)}
        created: list[Run] = []
        events: list[Event] = []
        task_rows = []
        cancel_rows = []
        started: dict[str, tuple[Run, Task]] = {}
        settled: list[Run] = []
        settled_tasks: dict[str, Task] = {}
        position = 0
        for plan, row in accepted:
            task_id, owner, status, end_reason = row[0], row[2], row[4], row[5]
            task: Task | None = None
            if plan.events or any(n.status == RunStatus.MISSED for n in plan.runs):
                task = _task_from_row(self._task_row(conn, None, task_id))
            counted = 0
            born_running: list[Run] = []
            born_settled: list[Run] = []
            for _ in plan.runs:
                run, counts = candidates[position]
                run_row = run_rows[position]
                position += 1
                if run.id not in inserted:
                    continue
                if counts:
                    counted += 1
                created.append(run)
                if run.id in running:
                    born_running.append(_run_from_row(run_row[:-1]))  # without `counts`
                elif run.status == RunStatus.SUCCESS:  # only an instant run is born so
                    born_settled.append(run)
                if run.status == RunStatus.MISSED:
                    assert task is not None
                    task_now = task.replace(run_count=task.run_count + counted)
                    events.append(
                        self._append_event(
                            conn,
                            task.owner,
                            NewEvent(
                                EventType.RUN_MISSED,
                                task.id,
                                run.id,
                                run_event_payload(task_now, run),
                            ),
                            now_us,
                            task.callback_url,
                        )
                    )
            task_row = (
                _us_or_none(plan.next_fire_at),
                _us_or_none(plan.last_fire_at),
                counted,
                str(plan.end.status) if plan.end else status,
                plan.end.reason if plan.end else end_reason,
                now_us,
                task_id,
            )
            task_rows.append(task_row)
            if born_running:
                fired_task = _task_after_fire(decoded[task_id], task_row)
                for run in born_running:
                    started[run.id] = (run, fired_task)
            if born_settled:
                # Their events show the task as the fire left it: only its count moved.
                upstream = decoded[task_id]
                run_count = upstream.run_count + counted
                for run in born_settled:
                    events.append(
                        self._append_event(
                            conn,
                            owner,
                            NewEvent(
                                event_type_for(upstream, run),
                                task_id,
                                run.id,
                                run_event_payload(upstream, run, run_count=run_count),
                            ),
                            now_us,
                            upstream.callback_url,
                        )
                    )
                settled += born_settled
                settled_tasks[task_id] = upstream
            cancel_rows += [(run_id,) for run_id in plan.cancel_run_ids]
            for new_event in plan.events:
                assert task is not None
                events.append(self._append_event(conn, owner, new_event, now_us, task.callback_url))
        conn.executemany(
            "UPDATE tasks SET next_fire_at = ?, last_fire_at = ?, "
            "run_count = run_count + ?, status = ?, end_reason = ?, "
            "claimed_by = NULL, claim_expires_at = NULL, updated_at = ? WHERE id = ?",
            task_rows,
        )
        conn.executemany(
            "UPDATE runs SET cancel_requested = 1 WHERE id = ? AND status IN ('queued', 'running')",
            cancel_rows,
        )
        if started:
            conn.executemany(
                "INSERT INTO attempts (run_id, number, status, started_at, node) "
                "VALUES (?, 1, 'running', ?, ?)",
                [(run_id, now_us, node) for run_id in started],
            )
        if settled:
            conn.executemany(
                "INSERT INTO attempts (run_id, number, status, started_at, finished_at, node) "
                "VALUES (?, 1, 'success', ?, ?, ?)",
                [(run.id, now_us, now_us, node) for run in settled],
            )
            self._queue_dependents(conn, settled_tasks, settled)
        for plan, row in accepted:
            if plan.end is not None and plan.end.status == TaskStatus.EXPIRED:
                ended = _task_from_row(self._task_row(conn, None, row[0]))
                announced = self._announce_end_if_idle(conn, ended, now)
                if announced is not None:
                    events.append(announced)
        return FireResult(created, events, lost, settled), started

    @staticmethod
    def _run_row(
        run: Run, now_us: int, counts: bool, lease: tuple[str, int] | None = None
    ) -> tuple[Any, ...]:
        """The row of a new run; with `lease` (node, until), the run starts its first attempt
        as it is written."""
        return (
            run.id,
            run.task_id,
            run.owner,
            str(run.trigger),
            _us_or_none(run.scheduled_for),
            _us(run.due_at),
            "running" if lease else str(run.status),
            1 if lease else run.attempt,
            run.max_attempts,
            now_us,
            now_us if lease or run.started_at is not None else None,
            now_us if run.finished_at is not None else None,
            run.duration_ms,
            _json_or_none(run.output),
            run.error_message,
            lease[0] if lease else None,
            lease[1] if lease else None,
            0,
            _json_or_none(run.input),
            1 if counts else 0,
        )

    def _insert_run(
        self, conn: sqlite3.Connection, task: Task, new: NewRun, now: datetime
    ) -> Run | None:
        run = new_run_record(task.id, task.owner, task.retry.attempts, new, now)
        cursor = conn.execute(
            f"INSERT OR IGNORE INTO runs ({_RUN_COLUMNS}, counts) VALUES ({_RUN_MARKS})",
            self._run_row(run, _us(now), new.counts),
        )
        return run if cursor.rowcount == 1 else None

    def _append_event(
        self,
        conn: sqlite3.Connection,
        owner: str,
        event: NewEvent,
        now_us: int,
        callback_url: str | None = None,
    ) -> Event:
        """Append an event (and its callback delivery) in the running transaction. Its cursor
        is taken here, from the log's sequence, which no one else can move while this
        transaction holds the write lock; the rows are written together just before the
        commit (`_write_appended`), one statement for a whole batch of runs' events."""
        if self._next_cursor is None:
            # Outside `_tx` the rows would wait for someone else's commit, under stale cursors.
            assert conn.in_transaction, "events are appended inside a write transaction (_tx)"
            row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
            self._next_cursor = (row[0] if row is not None else 0) + 1
        cursor = self._next_cursor
        self._next_cursor = cursor + 1
        values = dict(event.payload)
        kind = str(event.type)
        self._event_rows.append(
            (cursor, owner, kind, event.task_id, event.run_id, now_us, _encode(values))
        )
        created = _dt_req(now_us)
        if callback_url and event.type in CALLBACK_EVENTS:
            stamp = created.isoformat().replace("+00:00", "Z")
            body = _encode({"event": kind, "timestamp": stamp, **values})
            self._delivery_rows.append(
                (
                    new_id("msg"),
                    owner,
                    event.task_id,
                    cursor,
                    kind,
                    callback_url,
                    body,
                    now_us,
                    now_us,
                )
            )
        return Event(
            cursor=cursor,
            owner=owner,
            type=event.type,
            task_id=event.task_id,
            run_id=event.run_id,
            created_at=created,
            payload=values,
        )

    def _write_appended(self, conn: sqlite3.Connection) -> None:
        """Write the events and deliveries `_append_event` took in this transaction."""
        if self._event_rows:
            conn.executemany(
                f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                self._event_rows,
            )
        if self._delivery_rows:
            conn.executemany(
                f"INSERT INTO deliveries ({_DELIVERY_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, NULL, NULL, NULL, NULL)",
                self._delivery_rows,
            )
        self._forget_appended()

    def _forget_appended(self) -> None:
        self._event_rows = []
        self._delivery_rows = []
        self._next_cursor = None

    def _announce_end_if_idle(
        self, conn: sqlite3.Connection, task: Task, now: datetime
    ) -> Event | None:
        """Append `task.expired` once the ended task has no unfinished run left."""
        if task.status != TaskStatus.EXPIRED:
            return None
        busy = conn.execute(
            "SELECT 1 FROM runs WHERE task_id = ? AND status IN ('queued', 'running') LIMIT 1",
            (task.id,),
        ).fetchone()
        if busy is not None:
            return None
        changed = conn.execute(
            "UPDATE tasks SET end_announced = 1 WHERE id = ? AND end_announced = 0", (task.id,)
        ).rowcount
        if not changed:
            return None
        return self._append_event(
            conn,
            task.owner,
            NewEvent(
                EventType.TASK_EXPIRED, task.id, None, task_event_payload(task, task.end_reason)
            ),
            _us(now),
            task.callback_url,
        )

    async def release_tasks(self, node: str, task_ids: Sequence[str]) -> None:
        if not task_ids:
            return
        marks = ", ".join("?" * len(task_ids))

        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE tasks SET claimed_by = NULL, claim_expires_at = NULL "
                f"WHERE claimed_by = ? AND id IN ({marks})",
                (node, *task_ids),
            )

        await self._tx(fn)

    # --- runs -----------------------------------------------------------------------------
    async def create_run(self, owner: str | None, task_id: str, run: NewRun, now: datetime) -> Run:
        def fn(conn: sqlite3.Connection) -> Run:
            task = _task_from_row(self._task_row(conn, owner, task_id))
            created = self._insert_run(conn, task, run, now)
            if created is None:
                raise StoreError(f"run {run.id} for {run.scheduled_for} exists already")
            return created

        return await self._tx(fn)

    async def create_event_run(
        self, task_id: str, event_id: str, run: NewRun, now: datetime
    ) -> tuple[str, bool]:
        def fn(conn: sqlite3.Connection) -> tuple[str, bool]:
            found = conn.execute(
                "SELECT run_id FROM trigger_events WHERE task_id = ? AND event_id = ?",
                (task_id, event_id),
            ).fetchone()
            if found is not None:
                return str(found[0]), False
            task = _task_from_row(self._task_row(conn, None, task_id))
            created = self._insert_run(conn, task, run, now)
            if created is None:
                raise StoreError(f"run {run.id} exists already")
            conn.execute(
                "INSERT INTO trigger_events (task_id, event_id, run_id, received_at) "
                "VALUES (?, ?, ?, ?)",
                (task_id, event_id, created.id, _us(now)),
            )
            return created.id, True

        return await self._tx(fn)

    async def event_run_id(self, task_id: str, event_id: str) -> str | None:
        row = await self._call(
            lambda c: c.execute(
                "SELECT run_id FROM trigger_events WHERE task_id = ? AND event_id = ?",
                (task_id, event_id),
            ).fetchone()
        )
        return None if row is None else str(row[0])

    async def count_runs_since(self, task_id: str, trigger: Trigger, since: datetime) -> int:
        count = await self._call(
            lambda c: c.execute(
                "SELECT count(*) FROM runs WHERE task_id = ? AND trigger = ? AND created_at >= ?",
                (task_id, str(trigger), _us(since)),
            ).fetchone()[0]
        )
        return int(count)

    async def claim_runs(self, node: str, now: datetime, limit: int, lease: timedelta) -> list[Run]:
        now_us, until_us = _us(now), _us(now + lease)

        def fn(conn: sqlite3.Connection) -> list[Run]:
            chosen = self._claim_runs_on(conn, node, now_us, until_us, limit)
            fetched = self._rows_by_id(conn, f"SELECT {_RUN_COLUMNS} FROM runs", chosen)
            by_id = {r[0]: _run_from_row(r) for r in fetched}
            return [by_id[i] for i in chosen]

        return await self._tx(fn)

    @staticmethod
    def _choose_runs(
        conn: sqlite3.Connection,
        now_us: int,
        limit: int,
        born: Sequence[tuple[int, str, str, str]] = (),
    ) -> list[str]:
        """Up to `limit` queued runs due at `now_us` to start, in due order: a task that does
        not allow overlap contributes its earliest queued run only, and none while one of its
        runs is running (or claimed by a live node). `born` adds runs about to be written
        queued in this transaction, as (due_at, id, task_id, overlap)."""
        rows: list[tuple[Any, ...]] = conn.execute(
            "SELECT r.due_at, r.id, r.task_id, t.overlap FROM runs r "
            "JOIN tasks t ON t.id = r.task_id "
            "WHERE r.status = 'queued' AND r.due_at <= ? "
            "AND (r.claimed_by IS NULL OR r.lease_expires_at < ?) "
            "ORDER BY r.due_at, r.id LIMIT ?",
            (now_us, now_us, limit * 4),
        ).fetchall()
        if born:  # ids are unique: (due_at, id) decides
            rows = heapq.nsmallest(limit * 4, [*rows, *born])
        if not rows:
            return []
        exclusive = {task_id for _, _, task_id, overlap in rows if overlap != "allow"}
        busy: set[str] = set()
        if exclusive:
            marks = ", ".join("?" * len(exclusive))
            busy = {
                r[0]
                for r in conn.execute(
                    f"SELECT DISTINCT task_id FROM runs WHERE task_id IN ({marks}) AND "
                    "(status = 'running' OR (status = 'queued' AND claimed_by IS NOT NULL "
                    "AND lease_expires_at >= ?))",
                    (*exclusive, now_us),
                )
            }
        chosen: list[str] = []
        for _, run_id, task_id, overlap in rows:
            if len(chosen) >= limit:
                break
            if overlap != "allow":
                if task_id in busy:
                    continue
                busy.add(task_id)
            chosen.append(run_id)
        return chosen

    def _claim_runs_on(
        self,
        conn: sqlite3.Connection,
        node: str,
        now_us: int,
        until_us: int,
        limit: int,
        *,
        start: bool = False,
    ) -> list[str]:
        """Claim queued runs due at `now_us` for `node`; their ids in due order. With `start`,
        they are also marked running in their next attempt (`_start_on` without its update)."""
        chosen = self._choose_runs(conn, now_us, limit)
        self._mark_claimed(conn, node, now_us, until_us, chosen, start=start)
        return chosen

    @staticmethod
    def _mark_claimed(
        conn: sqlite3.Connection,
        node: str,
        now_us: int,
        until_us: int,
        run_ids: Sequence[str],
        *,
        start: bool,
    ) -> None:
        if not run_ids:
            return
        if not start:
            conn.executemany(
                "UPDATE runs SET claimed_by = ?, lease_expires_at = ? WHERE id = ?",
                [(node, until_us, run_id) for run_id in run_ids],
            )
        else:
            conn.executemany(
                "UPDATE runs SET claimed_by = ?, lease_expires_at = ?, status = 'running', "
                "attempt = attempt + 1, started_at = coalesce(started_at, ?) WHERE id = ?",
                [(node, until_us, now_us, run_id) for run_id in run_ids],
            )

    async def start_attempts(self, node: str, now: datetime, run_ids: Sequence[str]) -> list[Run]:
        if not run_ids:
            return []
        now_us = _us(now)

        def fn(conn: sqlite3.Connection) -> list[Run]:
            by_id = {r[0]: _run_from_row(r) for r in self._start_on(conn, node, now_us, run_ids)}
            return [by_id[i] for i in run_ids if i in by_id]

        return await self._tx(fn)

    def _start_on(
        self,
        conn: sqlite3.Connection,
        node: str,
        now_us: int,
        run_ids: Sequence[str],
        *,
        marked: bool = False,
    ) -> list[Sequence[Any]]:
        """Start the next attempt of these runs of `node` (`marked`: already marked running by
        `_claim_runs_on`); the rows of those running."""
        if not marked:
            conn.executemany(
                "UPDATE runs SET status = 'running', attempt = attempt + 1, "
                "started_at = coalesce(started_at, ?) "
                "WHERE claimed_by = ? AND status = 'queued' AND id = ?",
                [(now_us, node, run_id) for run_id in run_ids],
            )
        rows = [
            r
            for r in self._rows_by_id(conn, f"SELECT {_RUN_COLUMNS} FROM runs", list(run_ids))
            if r[15] == node and r[6] == "running"
        ]
        conn.executemany(
            "INSERT OR REPLACE INTO attempts (run_id, number, status, started_at, node) "
            "VALUES (?, ?, 'running', ?, ?)",
            [(r[0], r[7], now_us, node) for r in rows],
        )
        return rows

    async def start_due_runs(
        self, node: str, now: datetime, limit: int, lease: timedelta
    ) -> list[tuple[Run, Task]]:
        now_us, until_us = _us(now), _us(now + lease)
        return await self._tx(lambda conn: self._start_due_on(conn, node, now_us, until_us, limit))

    def _start_due_on(
        self, conn: sqlite3.Connection, node: str, now_us: int, until_us: int, limit: int
    ) -> list[tuple[Run, Task]]:
        return self._start_chosen_on(
            conn, node, now_us, until_us, self._choose_runs(conn, now_us, limit)
        )

    def _start_chosen_on(
        self, conn: sqlite3.Connection, node: str, now_us: int, until_us: int, chosen: list[str]
    ) -> list[tuple[Run, Task]]:
        """Start the stored queued runs `_choose_runs` chose, in that order, with their
        tasks."""
        if not chosen:
            return []
        self._mark_claimed(conn, node, now_us, until_us, chosen, start=True)
        started = self._start_on(conn, node, now_us, chosen, marked=True)
        runs = {r[0]: _run_from_row(r) for r in started}
        task_ids = list(dict.fromkeys(run.task_id for run in runs.values()))
        tasks = {
            r[0]: _task_from_row(r)
            for r in self._rows_by_id(conn, f"SELECT {_TASK_COLUMNS} FROM tasks", task_ids)
        }
        return [(runs[i], tasks[runs[i].task_id]) for i in chosen if i in runs]

    async def extend_leases(
        self, node: str, run_ids: Sequence[str], until: datetime
    ) -> tuple[set[str], set[str]]:
        if not run_ids:
            return set(), set()
        marks = ", ".join("?" * len(run_ids))

        def fn(conn: sqlite3.Connection) -> tuple[set[str], set[str]]:
            conn.execute(
                f"UPDATE runs SET lease_expires_at = ? WHERE claimed_by = ? AND id IN ({marks}) "
                "AND status IN ('queued', 'running')",
                (_us(until), node, *run_ids),
            )
            held: set[str] = set()
            cancel: set[str] = set()
            for run_id, cancel_requested in conn.execute(
                f"SELECT id, cancel_requested FROM runs WHERE claimed_by = ? AND id IN ({marks}) "
                "AND status IN ('queued', 'running')",
                (node, *run_ids),
            ):
                held.add(run_id)
                if cancel_requested:
                    cancel.add(run_id)
            return held, cancel

        return await self._tx(fn)

    async def finish_runs(
        self, node: str, outcomes: Sequence[RunOutcome]
    ) -> tuple[list[Run], list[Event]]:
        def fn(conn: sqlite3.Connection) -> tuple[list[Run], list[Event]]:
            wanted = list(dict.fromkeys(o.run_id for o in outcomes))
            runs = {
                r[0]: r
                for r in self._rows_by_id(conn, f"SELECT {_RUN_COLUMNS} FROM runs", wanted)
                if r[15] == node and r[6] in ("queued", "running")
            }
            handled: list[tuple[Run, RunOutcome]] = []
            for outcome in outcomes:
                row = runs.pop(outcome.run_id, None)  # an outcome twice: the first one counts
                if row is not None:
                    handled.append((_run_from_row(row), outcome))
            task_ids = list(dict.fromkeys(run.task_id for run, _ in handled))
            tasks = {
                r[0]: _task_from_row(r)
                for r in self._rows_by_id(conn, f"SELECT {_TASK_COLUMNS} FROM tasks", task_ids)
            }
            written: list[Run] = []
            attempt_rows = []
            retry_rows = []
            final_rows = []
            for run, outcome in handled:
                fin_us = _us(outcome.finished_at)
                error = outcome.error_message
                attempt_rows.append(
                    (str(outcome.attempt_status), fin_us, error, run.id, run.attempt)
                )
                output = _json_or_none(outcome.output)
                if outcome.retry_at is not None:
                    retry_rows.append((_us(outcome.retry_at), error, output, run.id))
                    written.append(
                        run.replace(
                            status=RunStatus.QUEUED,
                            due_at=outcome.retry_at,
                            claimed_by=None,
                            lease_expires_at=None,
                            error_message=error,
                            output=outcome.output,
                        )
                    )
                    continue
                status = ATTEMPT_STATUS_TO_RUN[outcome.attempt_status]
                duration = outcome.duration_ms
                if duration is None and run.started_at is not None:
                    duration = int((outcome.finished_at - run.started_at).total_seconds() * 1000)
                final_rows.append((str(status), fin_us, duration, output, error, run.id))
                written.append(
                    run.replace(
                        status=status,
                        finished_at=outcome.finished_at,
                        duration_ms=duration,
                        output=outcome.output,
                        error_message=error,
                        claimed_by=None,
                        lease_expires_at=None,
                    )
                )
            conn.executemany(
                "UPDATE attempts SET status = ?, finished_at = ?, error_message = ? "
                "WHERE run_id = ? AND number = ?",
                attempt_rows,
            )
            conn.executemany(
                "UPDATE runs SET status = 'queued', due_at = ?, claimed_by = NULL, "
                "lease_expires_at = NULL, error_message = ?, output = ? WHERE id = ?",
                retry_rows,
            )
            conn.executemany(
                "UPDATE runs SET status = ?, finished_at = ?, duration_ms = ?, output = ?, "
                "error_message = ?, claimed_by = NULL, lease_expires_at = NULL WHERE id = ?",
                final_rows,
            )
            # Events in outcome order; an ended task is announced after the batch's runs.
            events: list[Event] = []
            ending: dict[str, datetime] = {}
            for final in written:
                task = tasks.get(final.task_id)
                if final.status == RunStatus.QUEUED or task is None:
                    continue  # retried, or deleted while running: no one to tell
                assert final.finished_at is not None
                events.append(
                    self._append_event(
                        conn,
                        task.owner,
                        NewEvent(
                            event_type_for(task, final),
                            task.id,
                            final.id,
                            run_event_payload(task, final),
                        ),
                        _us(final.finished_at),
                        task.callback_url,
                    )
                )
                if task.status == TaskStatus.EXPIRED:
                    ending.pop(task.id, None)  # keep the order of each task's last run
                    ending[task.id] = final.finished_at
            for task_id, finished_at in ending.items():
                announced = self._announce_end_if_idle(conn, tasks[task_id], finished_at)
                if announced is not None:
                    events.append(announced)
            self._queue_dependents(conn, tasks, written)
            return written, events

        return await self._tx(fn)

    def _queue_dependents(
        self, conn: sqlite3.Connection, tasks: Mapping[str, Task], written: Sequence[Run]
    ) -> None:
        """A run, with the upstream run as input, for each active task that depends on the
        task of a run that just succeeded."""
        succeeded = [r for r in written if r.status == RunStatus.SUCCESS and r.task_id in tasks]
        if not succeeded:
            return
        upstream_ids = list(dict.fromkeys(r.task_id for r in succeeded))
        dependents: dict[str, list[Task]] = {}
        select = f"SELECT {_TASK_COLUMNS} FROM tasks"
        for row in self._rows_by_id(conn, select, upstream_ids, column="depends_on"):
            task = _task_from_row(row)
            if task.status == TaskStatus.ACTIVE:
                assert task.depends_on is not None
                dependents.setdefault(task.depends_on, []).append(task)
        for run in succeeded:
            upstream = tasks[run.task_id]
            for task in dependents.get(run.task_id, ()):
                if task.owner != upstream.owner:
                    continue
                assert run.finished_at is not None
                self._insert_run(conn, task, dependency_run(upstream, run), run.finished_at)

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

    async def release_runs(self, node: str, run_ids: Sequence[str]) -> None:
        if not run_ids:
            return
        marks = ", ".join("?" * len(run_ids))

        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE runs SET claimed_by = NULL, lease_expires_at = NULL "
                f"WHERE claimed_by = ? AND status = 'queued' AND id IN ({marks})",
                (node, *run_ids),
            )

        await self._tx(fn)

    async def claim_expired_runs(
        self, node: str, now: datetime, limit: int, lease: timedelta
    ) -> list[Run]:
        now_us, until_us = _us(now), _us(now + lease)

        def fn(conn: sqlite3.Connection) -> list[Run]:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM runs WHERE status = 'running' AND lease_expires_at < ? "
                    "ORDER BY lease_expires_at LIMIT ?",
                    (now_us, limit),
                )
            ]
            if not ids:
                return []
            marks = ", ".join("?" * len(ids))
            conn.execute(
                f"UPDATE runs SET claimed_by = ?, lease_expires_at = ? WHERE id IN ({marks})",
                (node, until_us, *ids),
            )
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE id IN ({marks})", ids
            ).fetchall()
            return [_run_from_row(r) for r in rows]

        return await self._tx(fn)

    async def backlog(self, now: datetime) -> tuple[int, int]:
        now_us = _us(now)
        row = await self._call(
            lambda c: c.execute(
                "SELECT (SELECT count(*) FROM tasks WHERE status = 'active' "
                "AND next_fire_at IS NOT NULL AND next_fire_at <= ?), "
                "(SELECT count(*) FROM runs WHERE status = 'queued' AND due_at <= ?)",
                (now_us, now_us),
            ).fetchone()
        )
        return int(row[0]), int(row[1])

    async def upcoming(self) -> Upcoming:
        row = await self._call(
            lambda c: c.execute(
                "SELECT (SELECT min(next_fire_at) FROM tasks "
                "WHERE status = 'active' AND next_fire_at IS NOT NULL), "
                "(SELECT min(due_at) FROM runs WHERE status = 'queued'), "
                "(SELECT min(lease_expires_at) FROM runs WHERE status = 'running')"
            ).fetchone()
        )
        return Upcoming(_dt(row[0]), _dt(row[1]), _dt(row[2]))

    async def request_cancel(self, owner: str | None, run_ids: Sequence[str]) -> None:
        if not run_ids:
            return
        marks = ", ".join("?" * len(run_ids))
        sql = (
            f"UPDATE runs SET cancel_requested = 1 WHERE id IN ({marks}) "
            "AND status IN ('queued', 'running')"
        )
        args: list[Any] = list(run_ids)
        if owner is not None:
            sql += " AND owner = ?"
            args.append(owner)

        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(sql, args)

        await self._tx(fn)

    async def get_run(self, owner: str | None, run_id: str) -> Run:
        def fn(conn: sqlite3.Connection) -> Run:
            row = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            if row is None or (owner is not None and row[2] != owner):
                raise RunNotFound(run_id)
            return _run_from_row(row)

        return await self._call(fn)

    async def list_runs(
        self,
        owner: str | None,
        *,
        task_id: str | None = None,
        status: RunStatus | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> list[Run]:
        filters = {"owner": owner, "task_id": task_id, "status": status and str(status)}
        sql, args = _newest_first(_RUN_COLUMNS, "runs", filters, before, limit)

        def fn(conn: sqlite3.Connection) -> list[Run]:
            if task_id is not None:
                self._task_row(conn, owner, task_id)
            return [_run_from_row(r) for r in conn.execute(sql, args).fetchall()]

        return await self._call(fn)

    async def list_attempts(self, owner: str | None, run_id: str) -> list[Attempt]:
        def fn(conn: sqlite3.Connection) -> list[Attempt]:
            row = conn.execute("SELECT owner FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None or (owner is not None and row[0] != owner):
                raise RunNotFound(run_id)
            return [
                Attempt(
                    run_id=r[0],
                    number=r[1],
                    status=AttemptStatus(r[2]),
                    started_at=_dt_req(r[3]),
                    finished_at=_dt(r[4]),
                    error_message=r[5],
                    node=r[6],
                )
                for r in conn.execute(
                    "SELECT run_id, number, status, started_at, finished_at, error_message, node "
                    "FROM attempts WHERE run_id = ? ORDER BY number",
                    (run_id,),
                )
            ]

        return await self._call(fn)

    # --- events ---------------------------------------------------------------------------
    async def list_events(self, owner: str, *, after: int = 0, limit: int = 100) -> list[Event]:
        rows = await self._call(
            lambda c: c.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE owner = ? AND cursor > ? "
                "ORDER BY cursor LIMIT ?",
                (owner, after, limit),
            ).fetchall()
        )
        return [_event_from_row(r) for r in rows]

    async def append_events(self, now: datetime, events: Sequence[NewEvent]) -> list[Event]:
        now_us = _us(now)

        def fn(conn: sqlite3.Connection) -> list[Event]:
            ids = list(dict.fromkeys(e.task_id for e in events if e.task_id))
            owners = {
                r[0]: (r[1], r[2])
                for r in self._rows_by_id(conn, "SELECT id, owner, callback_url FROM tasks", ids)
            }
            written = []
            for event in events:
                found = owners.get(event.task_id or "")
                if found is not None:
                    written.append(self._append_event(conn, found[0], event, now_us, found[1]))
            return written

        return await self._tx(fn)

    async def latest_cursor(self, owner: str) -> int:
        value = await self._call(
            lambda c: c.execute(
                "SELECT max(cursor) FROM events WHERE owner = ?", (owner,)
            ).fetchone()[0]
        )
        return int(value or 0)

    # --- callbacks ------------------------------------------------------------------------
    async def add_callback_secret(
        self, task_id: str, secret: str, now: datetime, retire_others_at: datetime | None
    ) -> None:
        retire = retire_others_at or now
        await self._tx(lambda conn: self._add_secret_on(conn, task_id, secret, now, retire))

    async def callback_secrets(self, task_id: str, now: datetime) -> list[str]:
        return (await self.callback_secrets_of([task_id], now)).get(task_id, [])

    async def callback_secrets_of(
        self, task_ids: Sequence[str], now: datetime
    ) -> dict[str, list[str]]:
        ids = sorted(set(task_ids))
        if not ids:
            return {}
        marks = ", ".join("?" * len(ids))
        rows = await self._call(
            lambda c: c.execute(
                f"SELECT task_id, secret FROM callback_secrets WHERE task_id IN ({marks}) "
                "AND (retires_at IS NULL OR retires_at > ?) ORDER BY task_id, created_at DESC",
                (*ids, _us(now)),
            ).fetchall()
        )
        found: dict[str, list[str]] = {}
        for task_id, secret in rows:
            found.setdefault(task_id, []).append(secret)
        return found

    async def claim_deliveries(
        self, node: str, now: datetime, limit: int, lease: timedelta
    ) -> list[Delivery]:
        now_us, until_us = _us(now), _us(now + lease)

        def fn(conn: sqlite3.Connection) -> list[Delivery]:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ? "
                    "AND (claimed_by IS NULL OR lease_expires_at < ?) "
                    "ORDER BY next_attempt_at, id LIMIT ?",
                    (now_us, now_us, limit),
                )
            ]
            if not ids:
                return []
            marks = ", ".join("?" * len(ids))
            conn.execute(
                f"UPDATE deliveries SET claimed_by = ?, lease_expires_at = ? WHERE id IN ({marks})",
                (node, until_us, *ids),
            )
            rows = conn.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE id IN ({marks})", ids
            ).fetchall()
            by_id = {r[0]: _delivery_from_row(r) for r in rows}
            return [by_id[i] for i in ids]

        return await self._tx(fn)

    async def finish_delivery(
        self,
        node: str,
        delivery_id: str,
        now: datetime,
        *,
        delivered: bool,
        retry_at: datetime | None,
        status_code: int | None,
        error: str | None,
    ) -> Delivery | None:
        outcome = DeliveryOutcome(delivery_id, now, delivered, retry_at, status_code, error)
        (found,) = await self.finish_deliveries(node, [outcome])
        return found

    async def finish_deliveries(
        self, node: str, outcomes: Sequence[DeliveryOutcome]
    ) -> list[Delivery | None]:
        if not outcomes:
            return []
        rows = []
        for o in outcomes:
            if o.delivered:
                status, due = "delivered", None
            elif o.retry_at is not None:
                status, due = "pending", _us(o.retry_at)
            else:
                status, due = "failed", None
            delivered_at = _us(o.at) if o.delivered else None
            rows.append((status, due, o.status_code, o.error, delivered_at, o.delivery_id, node))

        def fn(conn: sqlite3.Connection) -> list[Delivery | None]:
            found: list[Delivery | None] = []
            for args in rows:
                changed = conn.execute(
                    "UPDATE deliveries SET status = ?, attempts = attempts + 1, "
                    "next_attempt_at = ?, last_status = ?, last_error = ?, delivered_at = ?, "
                    "claimed_by = NULL, lease_expires_at = NULL "
                    "WHERE id = ? AND claimed_by = ? AND status = 'pending' "
                    f"RETURNING {_DELIVERY_COLUMNS}",
                    args,
                ).fetchall()
                found.append(_delivery_from_row(changed[0]) if changed else None)
            return found

        return await self._tx(fn)

    async def list_deliveries(
        self,
        owner: str | None,
        *,
        status: DeliveryStatus | None = None,
        task_id: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> list[Delivery]:
        filters = {"owner": owner, "task_id": task_id, "status": status and str(status)}
        sql, args = _newest_first(_DELIVERY_COLUMNS, "deliveries", filters, before, limit)
        rows = await self._call(lambda c: c.execute(sql, args).fetchall())
        return [_delivery_from_row(r) for r in rows]

    async def redeliver(self, owner: str | None, delivery_id: str, now: datetime) -> Delivery:
        def fn(conn: sqlite3.Connection) -> Delivery:
            row = conn.execute(
                "SELECT owner FROM deliveries WHERE id = ?", (delivery_id,)
            ).fetchone()
            if row is None or (owner is not None and row[0] != owner):
                raise NotFound(f"no delivery with id {delivery_id!r}; list_deliveries shows them")
            conn.execute(
                "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, "
                "claimed_by = NULL, lease_expires_at = NULL WHERE id = ?",
                (_us(now), delivery_id),
            )
            found = conn.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE id = ?", (delivery_id,)
            ).fetchone()
            return _delivery_from_row(found)

        return await self._tx(fn)

    async def next_delivery_due_at(self) -> datetime | None:
        value = await self._call(
            lambda c: c.execute(
                "SELECT min(next_attempt_at) FROM deliveries WHERE status = 'pending'"
            ).fetchone()[0]
        )
        return _dt(value)

    # --- retention ------------------------------------------------------------------------
    async def prune(
        self,
        now: datetime,
        *,
        runs_per_task: int,
        run_max_age: timedelta,
        event_max_age: timedelta,
    ) -> PruneCounts:
        run_cutoff = _us(now - run_max_age)
        event_cutoff = _us(now - event_max_age)
        terminal = "status NOT IN ('queued', 'running')"

        def fn(conn: sqlite3.Connection) -> PruneCounts:
            doomed = [
                r[0]
                for r in conn.execute(
                    f"SELECT id FROM runs WHERE {terminal} AND finished_at < ?", (run_cutoff,)
                )
            ]
            doomed += [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM (SELECT id, finished_at, row_number() OVER "
                    "(PARTITION BY task_id ORDER BY id DESC) AS n FROM runs "
                    f"WHERE {terminal}) WHERE n > ? AND finished_at >= ?",
                    (runs_per_task, run_cutoff),
                )
            ]
            for start in range(0, len(doomed), 500):
                chunk = doomed[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                conn.execute(f"DELETE FROM attempts WHERE run_id IN ({marks})", chunk)
                conn.execute(f"DELETE FROM runs WHERE id IN ({marks})", chunk)
            events = conn.execute(
                "DELETE FROM events WHERE created_at < ?", (event_cutoff,)
            ).rowcount
            conn.execute(
                "DELETE FROM deliveries WHERE status != 'pending' AND created_at < ?",
                (event_cutoff,),
            )
            # Event ids are remembered (against redelivery) as long as events are kept.
            conn.execute("DELETE FROM trigger_events WHERE received_at < ?", (event_cutoff,))
            return PruneCounts(runs=len(doomed), events=events)

        return await self._tx(fn)
