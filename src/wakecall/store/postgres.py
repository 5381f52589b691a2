"""The store for several nodes: PostgreSQL through an asyncpg pool.

Tables live in one PostgreSQL schema (`wakecall` unless told otherwise), reached through the
`search_path` of every pooled connection. `open()` creates or upgrades them under a
transaction-level advisory lock, so nodes starting together migrate once; the `meta` table holds
the schema version. Instants are `timestamptz`, JSON is `jsonb`, the event cursor a `bigserial`.

Every method is one short transaction (or one statement), with batches sent as arrays through
`unnest`, so a method costs a handful of round trips however many rows it touches. The instants
the engine passes in (`now`) are the only clock the store uses. A server's engine reads time
through `OffsetClock` corrected by `clock_offset` (the database server's clock minus this
machine's, measured every few seconds), so every node's `now`, and with it every lease and fire
time, is on the database's clock.

Concurrency, method by method:

* Claims (`claim_due_tasks`, `claim_runs`, `claim_expired_runs`, `claim_deliveries`) select
  their rows `FOR UPDATE SKIP LOCKED`: two nodes never take the same row, and neither waits for
  the other. A row that another transaction holds for a moment (a task being finished, say) is
  left for the next claim.
* The overlap rule of `claim_runs` (one run per task that does not allow overlap, none while
  another is running or claimed) cannot be checked with row locks on runs alone: two nodes could
  each lock a different queued run of one task. So a claimant also takes a per-task advisory
  transaction lock for every such task (in key order, so two claimants cannot deadlock) and only
  then reads which tasks are busy, with a fresh snapshot that sees the other's committed claim.
  Task rows are not locked for this: `record_fires` holds task rows while it flags runs, and a
  claimant that locked runs first and then tasks could deadlock with it.
* Writers that touch both take task rows before run rows (`record_fires`, `finish_runs`,
  `delete_task`), and every write of several runs locks them in id order first, so writers may
  wait for each other but cannot deadlock. Claims skip locked rows instead of waiting, and the
  only thing `claim_runs` waits for is another claimant's per-task lock.
* `finish_runs` locks the tasks of the runs it finishes, so "this was the last unfinished run
  of an expired task" is decided by one transaction at a time: otherwise two nodes finishing
  the last two runs at once would each see the other's run unfinished, and `task.expired` would
  never be announced. The `end_announced` flag makes it exactly once.
* Every write after a claim checks the claimant (`claimed_by = node`) on a locked row.
  `finish_runs` of runs this object started checks it by row version instead: it locks the
  tasks and the runs, and writes the outcomes and their events in the same statement only if
  each row's `xmin` is still the one `start_due_runs` read (the run as started, claimed by this
  node; the task unchanged), so the outcomes and payloads computed from those rows are exact;
  otherwise it writes nothing and the rows are read again.

The hot paths are few statements each: `record_fires` of plain fires (no event to append) and
`finish_runs` as above are one statement; `start_due_runs` is three in one transaction
(candidates; the per-task locks; then the choice, the claim, the start and the attempts, with
each run's task). The plans of those statements are kept independent of table statistics
(see _PLANNER below).

Event cursors: a `bigserial` value is taken when a row is inserted, not when its transaction
commits, so two concurrent writers could commit cursors 8 and 7 in that order; a reader that
already saw 8 would then never see 7. Here every transaction that appends events first takes one
transaction-level advisory lock (per schema) and appends all its events, with the callback
deliveries they create, in one statement at its very end. Event inserts are thus serialized and
commit in cursor order: a reader never skips an event. The other way out (reading only below
the oldest in-flight cursor) delays every reader behind the slowest writer and needs bookkeeping
of in-flight transactions; the lock costs one short critical section (the insert and the commit)
per event-writing transaction, taken after its row writes are done.

PostgreSQL text cannot hold the NUL character, nor `jsonb` NaN or infinities: in run output,
error messages and event payloads (written from whatever actions return) NUL is replaced by
U+FFFD and a non-finite number by null, so a result is never lost for its content; in task
fields they are refused as a `StoreError`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple, TypeVar

import anyio
import asyncpg

from wakecall.errors import (
    Conflict,
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
    run_event_payload,
    task_event_payload,
)
from wakecall.recent import Recent
from wakecall.store.base import (
    RESYNC,
    DeliveryOutcome,
    DueTask,
    FirePlan,
    FireResult,
    Hint,
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
    fire_and_start_in_steps,
    live_tasks_added,
    live_tasks_removed,
    new_run_record,
)
from wakecall.store.rows import ATTEMPT_STATUS_TO_RUN, run_from_row, task_from_row
from wakecall.store.urls import redact as _redact

__all__ = ["SCHEMA_VERSION", "PostgresStore"]

log = logging.getLogger(__name__)

T = TypeVar("T")

SCHEMA_VERSION = 3

#: First key of wakecall's two-key advisory locks ("WAKE").
_LOCK_CLASS = 0x57414B45

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE tasks (
        id text PRIMARY KEY,
        owner text NOT NULL,
        name text NOT NULL,
        kind text NOT NULL,
        schedule jsonb NOT NULL,
        timezone text NOT NULL,
        action jsonb NOT NULL,
        retry jsonb NOT NULL,
        timeout_s double precision,
        overlap text NOT NULL,
        max_queued integer NOT NULL,
        catchup text NOT NULL,
        catchup_window_s double precision NOT NULL,
        max_runs bigint,
        expires_at timestamptz,
        status text NOT NULL,
        pause_note text,
        callback_url text,
        metadata jsonb NOT NULL,
        idempotency_key text,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        next_fire_at timestamptz,
        last_fire_at timestamptz,
        run_count bigint NOT NULL DEFAULT 0,
        claimed_by text,
        claim_expires_at timestamptz,
        end_reason text,
        end_announced boolean NOT NULL DEFAULT false
    );
    CREATE UNIQUE INDEX tasks_idempotency ON tasks (owner, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE INDEX tasks_due ON tasks (next_fire_at)
        WHERE status = 'active' AND next_fire_at IS NOT NULL;
    CREATE INDEX tasks_owner ON tasks (owner, id);

    CREATE TABLE runs (
        id text PRIMARY KEY,
        task_id text NOT NULL,
        owner text NOT NULL,
        trigger text NOT NULL,
        scheduled_for timestamptz,
        due_at timestamptz NOT NULL,
        status text NOT NULL,
        attempt integer NOT NULL,
        max_attempts integer NOT NULL,
        created_at timestamptz NOT NULL,
        started_at timestamptz,
        finished_at timestamptz,
        duration_ms bigint,
        output jsonb,
        error_message text,
        claimed_by text,
        lease_expires_at timestamptz,
        cancel_requested boolean NOT NULL DEFAULT false,
        counts boolean NOT NULL DEFAULT true,
        -- NULLs are distinct: manual runs (no scheduled_for) never collide.
        UNIQUE (task_id, scheduled_for)
    );
    CREATE INDEX runs_queued ON runs (due_at) WHERE status = 'queued';
    CREATE INDEX runs_running ON runs (lease_expires_at) WHERE status = 'running';
    CREATE INDEX runs_task ON runs (task_id, id);
    CREATE INDEX runs_owner ON runs (owner, id);
    CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;

    CREATE TABLE attempts (
        run_id text NOT NULL,
        number integer NOT NULL,
        status text NOT NULL,
        started_at timestamptz NOT NULL,
        finished_at timestamptz,
        error_message text,
        node text,
        PRIMARY KEY (run_id, number)
    );

    CREATE TABLE events (
        cursor bigserial PRIMARY KEY,
        owner text NOT NULL,
        type text NOT NULL,
        task_id text,
        run_id text,
        created_at timestamptz NOT NULL,
        payload jsonb NOT NULL
    );
    CREATE INDEX events_owner ON events (owner, cursor);
    CREATE INDEX events_created ON events (created_at);
    """,
    2: """
    CREATE TABLE deliveries (
        id text PRIMARY KEY,
        owner text NOT NULL,
        task_id text,
        event_cursor bigint NOT NULL,
        event_type text NOT NULL,
        url text NOT NULL,
        body text NOT NULL,
        status text NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz,
        created_at timestamptz NOT NULL,
        last_status integer,
        last_error text,
        delivered_at timestamptz,
        claimed_by text,
        lease_expires_at timestamptz
    );
    CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
    CREATE INDEX deliveries_owner ON deliveries (owner, id);

    CREATE TABLE callback_secrets (
        task_id text NOT NULL,
        secret text NOT NULL,
        created_at timestamptz NOT NULL,
        retires_at timestamptz,
        PRIMARY KEY (task_id, secret)
    );
    """,
    3: """
    ALTER TABLE tasks ADD COLUMN depends_on text;
    ALTER TABLE tasks ADD COLUMN trigger jsonb;
    ALTER TABLE tasks ADD COLUMN condition jsonb;
    CREATE INDEX tasks_depends_on ON tasks (depends_on) WHERE depends_on IS NOT NULL;
    ALTER TABLE runs ADD COLUMN input jsonb;
    CREATE TABLE trigger_events (
        task_id text NOT NULL,
        event_id text NOT NULL,
        run_id text NOT NULL,
        received_at timestamptz NOT NULL,
        PRIMARY KEY (task_id, event_id)
    );
    CREATE INDEX trigger_events_received ON trigger_events (received_at);
    -- Claims take queued runs in (due_at, id) order: without the id, a burst of runs due at
    -- one instant is sorted whole on every claim.
    DROP INDEX runs_queued;
    CREATE INDEX runs_queued ON runs (due_at, id) WHERE status = 'queued';
    """,
}

_META = "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)"

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
_EVENT_COLUMNS = "cursor, owner, type, task_id, run_id, created_at, payload"
_DELIVERY_COLUMNS = (
    "id, owner, task_id, event_cursor, event_type, url, body, status, attempts, "
    "next_attempt_at, created_at, last_status, last_error, delivered_at, claimed_by"
)
_UNFINISHED = "status IN ('queued', 'running')"
_RUN_WIDTH = len(_RUN_COLUMNS.split(","))


def _cols(columns: str) -> list[str]:
    return [c.strip() for c in columns.split(",")]


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
    "expires_at": lambda v: v,
    "status": str,
    "pause_note": lambda v: v,
    "callback_url": lambda v: v,
    "metadata": lambda v: json.dumps(v),
    "next_fire_at": lambda v: v,
    "last_fire_at": lambda v: v,
    "end_reason": lambda v: v,
    "depends_on": lambda v: v,
    "trigger": lambda v: _dumps_or_none(v),
    "condition": lambda v: _dumps_or_none(v),
}

_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

# Errors of the client or the connection (as opposed to a statement the server refused).
# InternalClientError: asyncpg's protocol state broke, seen when the server goes away while a
# pooled connection is being reset; the connection is dropped, so it counts as lost.
_CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.InternalClientError)
_MAX_HINT_BYTES = 7000
_OFFSET_WARNING = timedelta(seconds=1)
_LOST_CONNECTION = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InternalClientError,
)

# _PLANNER: the plans of the store's statements must not hinge on table statistics. The
# tables change faster than autovacuum analyzes them (a burst queues thousands of runs within
# a second), and asyncpg prepares each statement once per connection, so PostgreSQL keeps the
# generic plan it made while a table was nearly empty. Measured on such plans: every write of
# finished runs read all of `runs` and `attempts` (a sequential scan each, O(n) per batch); a
# claim read the whole queue through a bitmap of `runs_queued` and sorted it to take 256 runs;
# and, taking `status = 'queued'` to match a few rows, a lookup of one task's runs scanned
# that partial index in full. Every statement here is meant to be served by an index (by
# primary key, or in key order for the claims), so pooled connections run with sequential and
# bitmap scans off: the planner then uses an index wherever one applies, however small or
# stale it believes the table. Lookups of a task's, or of a list of runs', unfinished runs
# say `status IN ('queued', 'running')`, which no partial index matches, rather than one
# status; per-task probes are written as `LATERAL (… LIMIT 1)`, which is never turned into a
# join over the whole table.


class _PooledConnection(asyncpg.Connection):
    """A pooled connection released without asyncpg's reset query (`RESET ALL`, `CLOSE ALL`,
    `UNLISTEN *`, advisory unlock), a round trip per store call: the store leaves no session
    state behind (no SET, LISTEN, cursor or session-level lock). An open transaction is
    still rolled back on release."""

    def get_reset_query(self) -> str:
        return ""


# --- values ------------------------------------------------------------------------------


def _no_nul(text: str | None) -> str | None:
    return None if text is None else text.replace("\x00", "\ufffd")


def _jsonb_safe(value: Any) -> Any:
    """`value` (plain JSON data) with what `jsonb` refuses replaced: NUL characters in strings
    by U+FFFD, NaN and infinities by null."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_jsonb_safe(v) for v in value]
    if isinstance(value, dict):
        return {_jsonb_safe(k): _jsonb_safe(v) for k, v in value.items()}
    return value


def _dumps(value: Any) -> str:
    """JSON text for a `jsonb` column, as the SQLite store writes it where `jsonb` accepts it."""
    text: str | None
    try:
        text = json.dumps(value, default=str, allow_nan=False)
    except ValueError:  # NaN or an infinity
        text = None
    if text is None or "\\u0000" in text:
        text = json.dumps(_jsonb_safe(json.loads(json.dumps(value, default=str))))
    return text


def _dumps_or_none(value: Any) -> str | None:
    return None if value is None else _dumps(value)


def _lock_key(text: str) -> int:
    """A stable signed 32-bit key for a two-key advisory lock."""
    value = zlib.crc32(text.encode())
    return value - (1 << 32) if value >= 1 << 31 else value


@lru_cache(maxsize=16384)
def _task_lock_key(schema: str, task_id: str) -> int:
    """A stable signed 64-bit key for a one-key advisory lock on a task (a separate key space
    from the two-key locks)."""
    digest = hashlib.blake2b(f"{schema}:{task_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _same(value: Any) -> Any:
    return value  # asyncpg decodes instants itself


def _task_from_row(row: Sequence[Any]) -> Task:
    """A task from a row whose first columns are `_TASK_COLUMNS`, in that order."""
    return task_from_row(row, _same, _same)


def _run_from_row(row: Sequence[Any]) -> Run:
    """A run from a row whose first columns are `_RUN_COLUMNS`, in that order."""
    return run_from_row(row, _same, _same)


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
        task.expires_at,
        str(task.status),
        task.pause_note,
        task.callback_url,
        json.dumps(task.metadata),
        task.idempotency_key,
        task.created_at,
        task.updated_at,
        task.next_fire_at,
        task.last_fire_at,
        task.run_count,
        task.claimed_by,
        task.claim_expires_at,
        task.end_reason,
        task.depends_on,
        _dumps_or_none(task.trigger),
        _dumps_or_none(task.condition),
    )


def _event_from_row(row: Mapping[str, Any]) -> Event:
    return Event(
        cursor=row["cursor"],
        owner=row["owner"],
        type=EventType(row["type"]),
        task_id=row["task_id"],
        run_id=row["run_id"],
        created_at=row["created_at"],
        payload=json.loads(row["payload"]),
    )


def _delivery_from_row(row: Mapping[str, Any]) -> Delivery:
    return Delivery(
        id=row["id"],
        owner=row["owner"],
        task_id=row["task_id"],
        event_cursor=row["event_cursor"],
        event_type=EventType(row["event_type"]),
        url=row["url"],
        body=row["body"],
        status=DeliveryStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        created_at=row["created_at"],
        last_status=row["last_status"],
        last_error=row["last_error"],
        delivered_at=row["delivered_at"],
        claimed_by=row["claimed_by"],
    )


class _RolledBack(Exception):
    """Raised inside a transaction to roll it back (a dry run) and carry its result out."""

    def __init__(self, result: list[TaskWritten]) -> None:
        super().__init__("rolled back")
        self.result = result


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


class _Started(NamedTuple):
    """A run as `start_due_runs` wrote it for `node`, with its task as read then, and both
    rows' `xmin` (the transaction that wrote the version read)."""

    node: str
    run: Run
    task: Task
    run_xmin: str
    task_xmin: str


_STARTED_MAX = 16384


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


def _shift(sql: str, by: int) -> str:
    """`sql` with its parameters renumbered from $1+`by` (to follow another statement's)."""
    return re.sub(r"\$(\d+)", lambda m: f"${int(m.group(1)) + by}", sql)


def _written(pending: Sequence[_PendingEvent], cursors: Sequence[asyncpg.Record]) -> list[Event]:
    """The events as appended: the cursors came in any order, and were taken in event order."""
    return _written_cursors(pending, [r[0] for r in cursors])


def _written_cursors(pending: Sequence[_PendingEvent], cursors: Sequence[int]) -> list[Event]:
    ordered = sorted(cursors)
    return [p.written(c) for p, c in zip(pending, ordered, strict=True)]


def _run_after(run: Run, outcome: RunOutcome) -> Run:
    """The run as its attempt's outcome leaves it: queued again for a retry, or final."""
    if outcome.retry_at is not None:
        return run.replace(
            status=RunStatus.QUEUED,
            due_at=outcome.retry_at,
            claimed_by=None,
            lease_expires_at=None,
            error_message=outcome.error_message,
            output=outcome.output,
        )
    duration = outcome.duration_ms
    if duration is None and run.started_at is not None:
        duration = int((outcome.finished_at - run.started_at).total_seconds() * 1000)
    return run.replace(
        status=ATTEMPT_STATUS_TO_RUN[outcome.attempt_status],
        finished_at=outcome.finished_at,
        duration_ms=duration,
        output=outcome.output,
        error_message=outcome.error_message,
        claimed_by=None,
        lease_expires_at=None,
    )


#: The runs `ins` inserted that count toward `max_runs`, as one object {task id: how many}:
#: looked up by key for each task moved on. (A join of the two, both of unknown size to the
#: planner, is a nested loop: 250,000 comparisons for 500 tasks.)
_COUNTED = (
    "  SELECT coalesce(jsonb_object_agg(task_id, n), '{}') AS n FROM ("
    "    SELECT task_id, count(*) AS n FROM ins WHERE counts GROUP BY task_id) c"
)


def _plain(plan: FirePlan) -> bool:
    """A plan whose recording appends no event and flags no run: no missed run, no expiry,
    no run to cancel, no event of its own."""
    return (
        not plan.events
        and not plan.cancel_run_ids
        and (plan.end is None or plan.end.status != TaskStatus.EXPIRED)
        and all(new.status != RunStatus.MISSED for new in plan.runs)
        and plan.instant is None
    )


def _newest_first(
    columns: str, table: str, filters: Mapping[str, Any], before: str | None, limit: int
) -> tuple[str, list[Any]]:
    """A page query: rows whose columns equal every non-None filter, with id < `before`,
    newest (highest id) first."""
    args: list[Any] = []
    where = []
    for column, value in filters.items():
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    if before is not None:
        args.append(before)
        where.append(f"id < ${len(args)}")
    sql = f"SELECT {columns} FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    args.append(limit)
    return sql + f" ORDER BY id DESC LIMIT ${len(args)}", args


class PostgresStore:
    """`Store` on a PostgreSQL database, shared by any number of nodes.

    `url` is a libpq URL (`postgresql://user:password@host:port/database`); `schema` names the
    PostgreSQL schema that holds wakecall's tables (created when missing). Each node keeps a
    pool of `min_pool`..`max_pool` connections; a statement that takes longer than
    `command_timeout` seconds, or a connection not made within `connect_timeout`, is a
    `StoreError`."""

    def __init__(
        self,
        url: str,
        *,
        schema: str = "wakecall",
        min_pool: int = 0,
        max_pool: int = 10,
        command_timeout: float = 60.0,
        connect_timeout: float = 10.0,
    ) -> None:
        if not _SCHEMA_NAME.fullmatch(schema):
            raise ValueError(
                f"schema {schema!r} is not a plain PostgreSQL name; use letters, digits and _ "
                "(at most 63), e.g. 'wakecall'"
            )
        if not 0 <= min_pool <= max_pool or max_pool < 1:
            raise ValueError(
                f"need 0 <= min_pool <= max_pool and max_pool >= 1, got {min_pool} and {max_pool}"
            )
        self.url = url
        self.schema = schema
        self.min_pool = min_pool
        self.max_pool = max_pool
        self.command_timeout = command_timeout
        self.connect_timeout = connect_timeout
        self._pool: asyncpg.Pool | None = None
        self._where = f"schema {schema!r} at {_redact(url)}"
        self._ident = f'"{schema}"'
        self._migrate_lock = _lock_key(f"{schema}:migrate")
        self._events_lock = _lock_key(f"{schema}:events")
        #: The NOTIFY channel of this schema's hints (a channel name is at most 63 bytes).
        self.channel = "wakecall_" + hashlib.sha256(schema.encode()).hexdigest()[:24]
        #: Tags this object's own hints, which its `watch` skips.
        self._sender = new_id("st")
        #: How often `watch` checks that its listening connection still works (and measures
        #: the clock offset again).
        self.listen_check = 5.0
        #: The database server's clock minus this machine's, measured at `open()` and at each
        #: check of `watch`. Nodes read time through it (`OffsetClock`), so leases and fire
        #: times are on the database's clock.
        self.clock_offset = timedelta(0)
        #: The runs this object started and not yet finished, each with its task and the row
        #: versions (`xmin`) they were read at: `finish_runs` writes from these when neither
        #: row changed since (see `_finish_started`).
        self._started: Recent[str, _Started] = Recent(_STARTED_MAX)

    # --- plumbing -------------------------------------------------------------------------
    def _translate(self, exc: BaseException) -> StoreError:
        if isinstance(exc, _LOST_CONNECTION):
            return StoreError(f"lost the connection to PostgreSQL ({self._where}): {exc}")
        return StoreError(f"PostgreSQL refused a statement ({self._where}): {exc}")

    async def _call(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run `fn(conn)` on a pooled connection (each statement commits on its own)."""
        pool = self._pool
        if pool is None:
            raise StoreError("the store is not open; call open() first")
        try:
            async with pool.acquire(timeout=self.command_timeout) as conn:
                return await fn(conn)
        except asyncpg.IntegrityConstraintViolationError:
            raise
        except (*_CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
            raise self._translate(exc) from exc

    async def _write(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """`_call` for a write of one statement, shielded from cancellation: once sent, it
        completes (or fails) before the caller sees the cancellation, as a write to the SQLite
        store does. Bounded by `command_timeout`."""
        with anyio.CancelScope(shield=True):
            result = await self._call(fn)
        return result

    async def _tx(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """`_write` for several statements: `fn(conn)` runs in one transaction, rolled back on
        any error."""

        async def body(conn: asyncpg.Connection) -> T:
            async with conn.transaction():
                return await fn(conn)

        return await self._write(body)

    # --- hints to other nodes -------------------------------------------------------------
    def _hint_payload(self, *, due: bool, owners: Sequence[str] = ()) -> str:
        body: dict[str, Any] = {"s": self._sender, "d": due, "o": sorted(set(owners))}
        text = json.dumps(body, separators=(",", ":"))
        if len(text.encode()) > _MAX_HINT_BYTES:  # NOTIFY payloads stop at 8000 bytes
            text = json.dumps({"s": self._sender, "d": due, "a": True}, separators=(",", ":"))
        return text

    async def _hint(
        self, conn: asyncpg.Connection, *, due: bool, owners: Sequence[str] = ()
    ) -> None:
        """NOTIFY the other nodes; inside a transaction, sent when (and if) it commits."""
        await conn.execute(
            "SELECT pg_notify($1, $2)", self.channel, self._hint_payload(due=due, owners=owners)
        )

    def _parse_hint(self, payload: str) -> Hint | None:
        try:
            body = json.loads(payload)
            if body.get("s") == self._sender:
                return None  # our own change: this process knows already
            return Hint(
                due=bool(body.get("d")),
                owners=frozenset(str(o) for o in body.get("o") or ()),
                all_owners=bool(body.get("a")),
            )
        except (ValueError, TypeError, AttributeError):
            log.warning("ignoring a malformed hint on %s: %.200r", self.channel, payload)
            return None

    async def watch(self, on_hint: HintListener) -> None:
        """LISTEN on the schema's channel with a connection of its own. A lost connection is
        made again (backing off up to 10 s), followed by `RESYNC`; the connection is checked
        every `listen_check` seconds, so a silently dead one is noticed too."""
        delay = 0.2
        resync = False
        while True:
            try:
                conn = await asyncpg.connect(
                    self.url,
                    timeout=self.connect_timeout,
                    server_settings={"application_name": "wakecall-listen"},
                )
            except (*_CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
                log.warning("listening for hints: cannot connect (%s); again in %.1fs", exc, delay)
                await anyio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            delay = 0.2
            try:
                await self._listen(conn, on_hint, resync=resync)
            except (*_CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
                log.warning("listening for hints on %s: connection lost (%s)", self._where, exc)
            finally:
                conn.terminate()
            resync = True

    async def _listen(
        self, conn: asyncpg.Connection, on_hint: HintListener, *, resync: bool
    ) -> None:
        """Hand hints to `on_hint` until `conn` is lost."""
        lost = anyio.Event()

        def received(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            hint = self._parse_hint(payload)
            if hint is not None:
                on_hint(hint)

        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.add_listener(self.channel, received)
        if resync:
            log.info("listening for hints on %s again", self._where)
            on_hint(RESYNC)
        while not lost.is_set():
            with anyio.move_on_after(self.listen_check):
                await lost.wait()
            if not lost.is_set():
                with anyio.fail_after(self.connect_timeout):
                    await self._measure_offset(conn)
        log.warning("listening for hints on %s: the connection closed", self._where)

    # --- life cycle -----------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            pool = await asyncpg.create_pool(
                self.url,
                min_size=self.min_pool,
                max_size=self.max_pool,
                command_timeout=self.command_timeout,
                timeout=self.connect_timeout,
                server_settings={
                    "search_path": self._ident,
                    "application_name": "wakecall",
                    "jit": "off",
                    # Plans by index whatever the statistics: see _PLANNER.
                    "enable_seqscan": "off",
                    "enable_bitmapscan": "off",
                },
                connection_class=_PooledConnection,
            )
        except (*_CONNECTION_ERRORS, asyncpg.PostgresError, ValueError) as exc:
            raise StoreError(f"cannot connect to PostgreSQL at {_redact(self.url)}: {exc}") from exc
        try:
            # The pool connects lazily (no floor to restore while the server is away): make
            # the first connection now, so a bad URL or password fails here.
            await pool.release(await pool.acquire(timeout=self.connect_timeout))
        except (*_CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
            pool.terminate()
            raise StoreError(f"cannot connect to PostgreSQL at {_redact(self.url)}: {exc}") from exc
        self._pool = pool
        try:
            await self._call(self._prepare)
            await self._call(self._measure_offset)
        except BaseException:
            await self.close()
            raise

    async def _measure_offset(self, conn: asyncpg.Connection) -> None:
        before = time.time()
        server: datetime = await conn.fetchval("SELECT clock_timestamp()")
        after = time.time()
        offset = server - datetime.fromtimestamp((before + after) / 2, UTC)
        if abs(offset - self.clock_offset) > _OFFSET_WARNING and abs(offset) > _OFFSET_WARNING:
            log.warning(
                "this machine's clock is %.3fs %s the database server's; scheduling by the "
                "server's (keep clocks in sync with NTP)",
                abs(offset.total_seconds()),
                "behind" if offset > timedelta(0) else "ahead of",
            )
        self.clock_offset = offset

    async def _read_version(self, conn: asyncpg.Connection) -> int:
        """The schema version, 0 for an empty or missing schema; `NotAWakecallDatabase` for
        a schema that holds tables of something else."""
        row = await conn.fetchrow(
            "SELECT to_regclass($1) IS NOT NULL AS has_meta, "
            "(SELECT count(*) FROM pg_tables WHERE schemaname = $2) AS tables",
            f"{self._ident}.meta",
            self.schema,
        )
        assert row is not None
        if not row["has_meta"]:
            if row["tables"]:
                raise NotAWakecallDatabase(
                    self._where, f"it holds {row['tables']} tables of another application"
                )
            return 0
        try:
            meta = dict(await conn.fetch(f"SELECT key, value FROM {self._ident}.meta"))
        except asyncpg.UndefinedColumnError as exc:
            raise NotAWakecallDatabase(self._where, "its meta table is not wakecall's") from exc
        if meta.get("application") != "wakecall":
            raise NotAWakecallDatabase(self._where, "its meta table belongs to something else")
        return int(meta.get("schema_version", "0"))

    async def _prepare(self, conn: asyncpg.Connection) -> None:
        version = await self._read_version(conn)
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self._where} has schema version {version}, newer than this wakecall "
                f"understands ({SCHEMA_VERSION}); upgrade wakecall"
            )
        async with conn.transaction():
            # Several nodes may start at once: one migrates, the others wait and re-read.
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1, $2)", _LOCK_CLASS, self._migrate_lock
            )
            version = await self._read_version(conn)
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self._where} has schema version {version}, newer than this wakecall "
                    f"understands ({SCHEMA_VERSION}); upgrade wakecall"
                )
            if version == SCHEMA_VERSION:
                return
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self._ident}")
            # The pool's search_path names the schema; it may not have existed at connect time.
            await conn.execute(f"SET LOCAL search_path TO {self._ident}")
            if version == 0:
                await conn.execute(_META)
                await conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('application', 'wakecall'), "
                    "('schema_version', '0')"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                await conn.execute(_MIGRATIONS[target])
                log.info("upgraded %s to schema version %d", self._where, target)
            await conn.execute(
                "UPDATE meta SET value = $1 WHERE key = 'schema_version'", str(SCHEMA_VERSION)
            )

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await pool.close()
            except (*_CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
                log.warning("closing the PostgreSQL pool of %s: %s", self._where, exc)
                pool.terminate()

    async def schema_version(self) -> int:
        return await self._call(self._read_version)

    async def drop_schema(self) -> None:
        """Drop the schema and everything in it (for tests)."""
        sql = f"DROP SCHEMA IF EXISTS {self._ident} CASCADE"
        if self._pool is not None:
            await self._call(lambda c: c.execute(sql))
            return
        try:
            conn = await asyncpg.connect(self.url)
        except (*_CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
            raise self._translate(exc) from exc
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    # --- tasks ----------------------------------------------------------------------------
    async def create_task(self, task: Task) -> tuple[Task, bool]:
        row = _task_to_row(task)
        values = ", ".join(f"${i}" for i in range(1, len(row) + 1))
        insert = f"INSERT INTO tasks ({_TASK_COLUMNS}) VALUES ({values})"
        if task.idempotency_key is None:

            async def plain(conn: asyncpg.Connection) -> None:
                await conn.execute(insert, *row)
                await self._hint(conn, due=True)

            await self._write(plain)
            return task, True
        insert += (
            " ON CONFLICT (owner, idempotency_key) WHERE idempotency_key IS NOT NULL "
            "DO NOTHING RETURNING id"
        )

        async def fn(conn: asyncpg.Connection) -> tuple[Task, bool]:
            # A concurrent create with the same key may commit or vanish between the two
            # statements; a second round settles it.
            for _ in range(3):
                if await conn.fetchval(insert, *row) is not None:
                    await self._hint(conn, due=True)
                    return task, True
                found = await conn.fetchrow(
                    f"SELECT {_TASK_COLUMNS} FROM tasks WHERE owner = $1 AND idempotency_key = $2",
                    task.owner,
                    task.idempotency_key,
                )
                if found is not None:
                    return _task_from_row(found), False
            raise StoreError(
                f"task with idempotency key {task.idempotency_key!r} kept changing; try again"
            )

        return await self._write(fn)

    async def get_task(self, owner: str | None, task_id: str) -> Task:
        async def fn(conn: asyncpg.Connection) -> Task:
            return _task_from_row(await self._task_row(conn, owner, task_id))

        return await self._call(fn)

    @staticmethod
    async def _task_row(
        conn: asyncpg.Connection, owner: str | None, task_id: str, lock: str = ""
    ) -> asyncpg.Record:
        if owner is None:
            row = await conn.fetchrow(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = $1 {lock}", task_id
            )
        else:
            row = await conn.fetchrow(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = $1 AND owner = $2 {lock}",
                task_id,
                owner,
            )
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

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if owner is not None:
            where.append(f"owner = {arg(owner)}")
        if status is not None:
            where.append(f"status = {arg(str(status))}")
        if kind is not None:
            where.append(f"kind = {arg(kind)}")
        if name_contains:
            where.append(f"strpos(lower(name), lower({arg(name_contains)})) > 0")
        for key, value in (metadata or {}).items():
            where.append(f"metadata -> {arg(str(key))} = {arg(json.dumps(value))}::jsonb")
        if after is not None:
            where.append(f"id > {arg(after)}")
        sql = f"SELECT {_TASK_COLUMNS} FROM tasks"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY id LIMIT {arg(limit)}"
        rows = await self._call(lambda c: c.fetch(sql, *args))
        return [_task_from_row(r) for r in rows]

    async def count_tasks(self, owner: str, *, active_only: bool = False) -> int:
        sql = "SELECT count(*) FROM tasks WHERE owner = $1"
        if active_only:
            sql += " AND status IN ('active', 'paused')"
        value = await self._call(lambda c: c.fetchval(sql, owner))
        return int(value)

    async def update_task(
        self, owner: str | None, task_id: str, changes: Mapping[str, Any], now: datetime
    ) -> Task:
        unknown = set(changes) - set(_UPDATABLE)
        if unknown:
            raise ValueError(f"update_task cannot set {sorted(unknown)}")
        values = [_UPDATABLE[name](value) for name, value in changes.items()] + [now, task_id]
        sets = [f"{name} = ${i}" for i, name in enumerate(changes, start=1)]
        sets.append(f"updated_at = ${len(changes) + 1}")
        sql = f"UPDATE tasks SET {', '.join(sets)} WHERE id = ${len(changes) + 2}"
        if owner is not None:
            values.append(owner)
            sql += f" AND owner = ${len(values)}"
        sql += f" RETURNING {_TASK_COLUMNS}"

        async def fn(conn: asyncpg.Connection) -> Task:
            row = await conn.fetchrow(sql, *values)
            if row is None:
                raise TaskNotFound(task_id)
            task = _task_from_row(row)
            if "status" in changes and task.status == TaskStatus.EXPIRED:
                announced = await self._mark_ends_announced(conn, [task.id])
                await self._append_events(
                    conn, _place_ends([_EndMark(task, now)], announced), due=True
                )
            else:
                await self._hint(conn, due=True)
            return task

        return await self._tx(fn)

    async def delete_task(self, owner: str | None, task_id: str) -> list[str]:
        deleted = await self._write(lambda conn: self._delete_task_on(conn, owner, task_id))
        return list(deleted.running)

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

        async def fn(conn: asyncpg.Connection) -> list[TaskWritten]:
            if limited:
                # One writer of new tasks per owner at a time, on every node: the count
                # below stays true until this transaction commits.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock($1, $2)",
                    _LOCK_CLASS,
                    _lock_key(f"{self.schema}:owner:{owner}"),
                )
            written: list[TaskWritten] = []
            ends: list[_PendingEvent | _EndMark] = []
            for write in writes:
                written.append(await self._write_task(conn, owner, write, now, ends))
            if limited:
                assert max_tasks is not None
                after = await self._live_tasks(conn, owner)
                if after > max_tasks and live_tasks_added(written) > live_tasks_removed(written):
                    raise LimitReached(
                        f"owner {owner!r} would hold {after} tasks; the limit is {max_tasks}"
                    )
            urls = {w.task.id: w.task.callback_url for w in written if w.task is not None}
            for event in events:
                url = urls.get(event.task_id or "")
                if url is None and event.task_id and event.task_id not in urls:
                    url = (await self._task_row(conn, owner, event.task_id))["callback_url"]
                ends.append(_PendingEvent(owner, event, now, url))
            marks = [p.task.id for p in ends if isinstance(p, _EndMark)]
            announced = await self._mark_ends_announced(conn, marks)
            await self._append_events(conn, _place_ends(ends, announced), due=True)
            if dry_run:
                raise _RolledBack(written)
            return written

        try:
            return await self._tx(fn)
        except _RolledBack as rolled_back:
            return rolled_back.result

    @staticmethod
    async def _live_tasks(conn: asyncpg.Connection, owner: str) -> int:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM tasks WHERE owner = $1 AND status IN ('active', 'paused')",
                owner,
            )
        )

    async def _write_task(
        self,
        conn: asyncpg.Connection,
        owner: str,
        write: TaskWrite,
        now: datetime,
        ends: list[_PendingEvent | _EndMark],
    ) -> TaskWritten:
        if isinstance(write, NewTask):
            return await self._insert_task(conn, owner, write, now)
        if isinstance(write, TaskUpdate):
            task = await self._update_task_on(conn, owner, write, now)
            if "status" in write.changes and task.status == TaskStatus.EXPIRED:
                ends.append(_EndMark(task, now))
            return TaskWritten(task)
        return await self._delete_task_on(conn, owner, write.task_id)

    async def _insert_task(
        self, conn: asyncpg.Connection, owner: str, write: NewTask, now: datetime
    ) -> TaskWritten:
        task = write.task
        if task.owner != owner:
            raise ValueError(f"task {task.id} belongs to {task.owner!r}, not {owner!r}")
        if task.idempotency_key is not None:
            found = await conn.fetchrow(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE owner = $1 AND idempotency_key = $2",
                owner,
                task.idempotency_key,
            )
            if found is not None:
                return TaskWritten(_task_from_row(found))
        row = _task_to_row(task)
        values = ", ".join(f"${i}" for i in range(1, len(row) + 1))
        inserted = await conn.fetchval(
            f"INSERT INTO tasks ({_TASK_COLUMNS}) VALUES ({values}) "
            "ON CONFLICT (id) DO NOTHING RETURNING id",
            *row,
        )
        if inserted is None:
            raise Conflict(f"a task with id {task.id!r} exists already; choose another id")
        if write.callback_secret is not None:
            await self._add_secret_on(conn, task.id, write.callback_secret, now, now)
        return TaskWritten(task, created=True)

    async def _update_task_on(
        self, conn: asyncpg.Connection, owner: str | None, write: TaskUpdate, now: datetime
    ) -> Task:
        changes = write.changes
        unknown = set(changes) - set(_UPDATABLE)
        if unknown:
            raise ValueError(f"update_task cannot set {sorted(unknown)}")
        current = _task_from_row(await self._task_row(conn, owner, write.task_id, "FOR UPDATE"))
        if write.seen_status is not None and current.status != write.seen_status:
            raise Conflict(
                f"task {current.id} changed meanwhile: it is now {current.status}, not "
                f"{write.seen_status}; read it again and retry"
            )
        values = [_UPDATABLE[name](value) for name, value in changes.items()] + [now, current.id]
        sets = [f"{name} = ${i}" for i, name in enumerate(changes, start=1)]
        sets.append(f"updated_at = ${len(changes) + 1}")
        row = await conn.fetchrow(
            f"UPDATE tasks SET {', '.join(sets)} WHERE id = ${len(changes) + 2} "
            f"RETURNING {_TASK_COLUMNS}",
            *values,
        )
        assert row is not None  # locked above
        if write.callback_secret is not None:
            retire = write.retire_secrets_at or now
            await self._add_secret_on(conn, current.id, write.callback_secret, now, retire)
        return _task_from_row(row)

    async def _delete_task_on(
        self, conn: asyncpg.Connection, owner: str | None, task_id: str
    ) -> TaskWritten:
        row = await conn.fetchrow(self._delete_task_sql(owner), *self._owned(task_id, owner))
        assert row is not None
        if not row["found"]:
            raise TaskNotFound(task_id)
        live = row["status"] in ("active", "paused")
        return TaskWritten(None, running=tuple(row["running"]), was_live=live)

    @staticmethod
    def _owned(task_id: str, owner: str | None) -> tuple[str, ...]:
        return (task_id,) if owner is None else (task_id, owner)

    @staticmethod
    def _delete_task_sql(owner: str | None) -> str:
        owner_check = "" if owner is None else " AND owner = $2"
        return (
            f"WITH t AS (DELETE FROM tasks WHERE id = $1{owner_check} RETURNING id, status), "
            "l AS (SELECT id FROM runs WHERE task_id IN (SELECT id FROM t) "
            "  ORDER BY id FOR UPDATE), "
            "r AS (DELETE FROM runs WHERE id IN (SELECT id FROM l) RETURNING id, status), "
            "a AS (DELETE FROM attempts WHERE run_id IN (SELECT id FROM r)), "
            # Pending deliveries keep their signing secrets until they are done.
            "k AS (DELETE FROM callback_secrets WHERE task_id IN (SELECT id FROM t) "
            "  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.task_id = $1 "
            "  AND d.status = 'pending')) "
            "SELECT (SELECT count(*) FROM t) AS found, (SELECT status FROM t) AS status, "
            "(SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM r "
            "WHERE status = 'running') AS running"
        )

    @staticmethod
    async def _add_secret_on(
        conn: asyncpg.Connection, task_id: str, secret: str, now: datetime, retire: datetime
    ) -> None:
        """A new signing secret; the task's others stop signing at `retire`."""
        await conn.execute(
            "UPDATE callback_secrets SET retires_at = $1 WHERE task_id = $2 "
            "AND (retires_at IS NULL OR retires_at > $1)",
            retire,
            task_id,
        )
        await conn.execute(
            "INSERT INTO callback_secrets (task_id, secret, created_at, retires_at) "
            "VALUES ($1, $2, $3, NULL)",
            task_id,
            secret,
            now,
        )

    # --- fires ----------------------------------------------------------------------------
    async def claim_due_tasks(
        self, node: str, now: datetime, limit: int, lease: timedelta
    ) -> list[DueTask]:
        sql = (
            "WITH due AS ("
            "  SELECT id FROM tasks"
            "  WHERE status = 'active' AND next_fire_at IS NOT NULL AND next_fire_at <= $1"
            "  AND (claimed_by IS NULL OR claim_expires_at < $1)"
            "  ORDER BY next_fire_at, id LIMIT $2 FOR UPDATE SKIP LOCKED"
            "), claimed AS ("
            "  UPDATE tasks t SET claimed_by = $3, claim_expires_at = $4 FROM due"
            f"  WHERE t.id = due.id RETURNING {', '.join('t.' + c for c in _cols(_TASK_COLUMNS))}"
            ") "
            # One look at each task's unfinished runs (by `runs_task`; see _PLANNER).
            "SELECT c.*, u.queued, u.running FROM claimed c, LATERAL ("
            "  SELECT count(*) FILTER (WHERE r.status = 'queued') AS queued,"
            "  array_agg(r.id ORDER BY r.id) FILTER (WHERE r.status = 'running') AS running"
            f"  FROM runs r WHERE r.task_id = c.id AND r.{_UNFINISHED}) u "
            "ORDER BY c.next_fire_at, c.id"
        )
        queued, running = len(_cols(_TASK_COLUMNS)), len(_cols(_TASK_COLUMNS)) + 1

        async def fn(conn: asyncpg.Connection) -> list[DueTask]:
            rows = await conn.fetch(sql, now, limit, node, now + lease)
            return [DueTask(_task_from_row(r), r[queued], tuple(r[running] or ())) for r in rows]

        return await self._write(fn)

    async def record_fires(self, node: str, now: datetime, plans: Sequence[FirePlan]) -> FireResult:
        if not plans:
            return FireResult([], [], [])
        wanted = sorted({p.task_id for p in plans})
        if len(wanted) == len(plans) and all(_plain(p) for p in plans):
            return await self._write(
                lambda conn: self._record_plain_fires(conn, node, now, plans, wanted)
            )

        async def fn(conn: asyncpg.Connection) -> FireResult:
            rows = await conn.fetch(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = ANY($1::text[]) "
                "ORDER BY id FOR UPDATE",
                wanted,
            )
            tasks = {r["id"]: _task_from_row(r) for r in rows}
            lost: list[str] = []
            accepted: list[tuple[FirePlan, Task]] = []
            seen: set[str] = set()
            for plan in plans:
                task = tasks.get(plan.task_id)
                # A second plan for one task finds the claim already released by the first.
                if task is None or task.claimed_by != node or plan.task_id in seen:
                    lost.append(plan.task_id)
                    continue
                seen.add(plan.task_id)
                accepted.append((plan, task))
            if not accepted:
                return FireResult([], [], lost)

            candidates = [
                (
                    new_run_record(
                        task.id,
                        task.owner,
                        task.retry.attempts,
                        new,
                        now,
                        plan.instant_for(new, now),
                    ),
                    new.counts,
                )
                for plan, task in accepted
                for new in plan.runs
            ]
            inserted = set(await self._write_fires(conn, node, now, accepted, candidates))

            created: list[Run] = []
            settled: list[Run] = []
            settled_tasks: dict[str, Task] = {}
            pending: list[_PendingEvent | _EndMark] = []
            ended: list[str] = []
            position = 0
            for plan, task in accepted:
                counted = 0
                born_settled: list[Run] = []
                for _ in plan.runs:
                    run, counts = candidates[position]
                    position += 1
                    if run.id not in inserted:
                        continue
                    if counts:
                        counted += 1
                    created.append(run)
                    if run.status == RunStatus.SUCCESS:  # only an instant run is born so
                        born_settled.append(run)
                    if run.status == RunStatus.MISSED:
                        task_now = task.replace(run_count=task.run_count + counted)
                        pending.append(
                            _PendingEvent(
                                task.owner,
                                NewEvent(
                                    EventType.RUN_MISSED,
                                    task.id,
                                    run.id,
                                    run_event_payload(task_now, run),
                                ),
                                now,
                                task.callback_url,
                            )
                        )
                if born_settled:
                    # Their events show the task as the fire left it: only its count moved.
                    settled += born_settled
                    settled_tasks[task.id] = task
                    pending.extend(
                        _PendingEvent(
                            task.owner,
                            NewEvent(
                                event_type_for(task, run),
                                task.id,
                                run.id,
                                run_event_payload(task, run, run_count=task.run_count + counted),
                            ),
                            now,
                            task.callback_url,
                        )
                        for run in born_settled
                    )
                pending.extend(
                    _PendingEvent(task.owner, e, now, task.callback_url) for e in plan.events
                )
                if plan.end is not None and plan.end.status == TaskStatus.EXPIRED:
                    # The task as just written; announced after the plan's own events.
                    ended.append(task.id)
                    pending.append(
                        _EndMark(
                            task.replace(
                                next_fire_at=plan.next_fire_at,
                                last_fire_at=plan.last_fire_at,
                                run_count=task.run_count + counted,
                                status=plan.end.status,
                                end_reason=plan.end.reason,
                                claimed_by=None,
                                claim_expires_at=None,
                                updated_at=now,
                            ),
                            now,
                        )
                    )
            queued_more = False
            if settled:
                await conn.execute(
                    "INSERT INTO attempts (run_id, number, status, started_at, finished_at, node)"
                    " SELECT id, 1, 'success', $2, $2, $3 FROM unnest($1::text[]) AS u(id)",
                    [run.id for run in settled],
                    now,
                    node,
                )
                queued_more = await self._queue_dependents(
                    conn, settled_tasks, set(settled_tasks), settled
                )
            announced = await self._mark_ends_announced(conn, ended)
            # Queued runs may be more than this node can start: wake the others.
            due = queued_more or any(r.status == RunStatus.QUEUED for r in created)
            events = await self._append_events(conn, _place_ends(pending, announced), due=due)
            return FireResult(created, events, lost, settled)

        return await self._tx(fn)

    async def _record_plain_fires(
        self,
        conn: asyncpg.Connection,
        node: str,
        now: datetime,
        plans: Sequence[FirePlan],
        wanted: Sequence[str],
    ) -> FireResult:
        """`record_fires` of plans that append no event (see `_plain`), one per task, in one
        statement: lock the tasks (in id order), keep those `node` still claims, insert their
        runs, move the tasks on and release them, and wake the other nodes when a run was
        queued."""
        runs = [(plan.task_id, new) for plan in plans for new in plan.runs]
        row = await conn.fetchrow(
            "WITH locked AS MATERIALIZED ("
            "  SELECT id, owner, retry, claimed_by FROM tasks WHERE id = ANY($1::text[])"
            "  ORDER BY id FOR UPDATE"
            "), mine AS MATERIALIZED ("
            "  SELECT id, owner, (retry ->> 'attempts')::int AS attempts FROM locked"
            "  WHERE claimed_by = $2"
            "), ins AS ("
            "  INSERT INTO runs (id, task_id, owner, trigger, scheduled_for, due_at, status,"
            "    attempt, max_attempts, created_at, finished_at, output, error_message, counts,"
            "    input)"
            "  SELECT u.id, u.task_id, m.owner, u.trigger, u.scheduled_for, u.due_at, u.status,"
            "    0, m.attempts, $3, u.finished_at, u.output::jsonb, u.error_message, u.counts,"
            "    u.input::jsonb"
            "  FROM unnest($4::text[], $5::text[], $6::text[], $7::timestamptz[],"
            "    $8::timestamptz[], $9::text[], $10::timestamptz[], $11::text[], $12::text[],"
            "    $13::bool[], $14::text[]) WITH ORDINALITY AS u(id, task_id, trigger,"
            "    scheduled_for, due_at, status, finished_at, output, error_message, counts,"
            "    input, n)"
            "  JOIN mine m ON m.id = u.task_id"
            "  ORDER BY u.n"
            "  ON CONFLICT DO NOTHING"
            "  RETURNING id, task_id, counts, status"
            f"), counted AS ({_COUNTED}"
            "), moved AS ("
            "  UPDATE tasks t SET next_fire_at = p.next_fire_at, last_fire_at = p.last_fire_at,"
            "    run_count = t.run_count"
            "      + coalesce(((SELECT n FROM counted) ->> p.id)::bigint, 0),"
            "    status = coalesce(p.status, t.status),"
            "    end_reason = CASE WHEN p.status IS NULL THEN t.end_reason ELSE p.end_reason END,"
            "    claimed_by = NULL, claim_expires_at = NULL, updated_at = $3"
            "  FROM unnest($15::text[], $16::timestamptz[], $17::timestamptz[], $18::text[],"
            "    $19::text[]) AS p(id, next_fire_at, last_fire_at, status, end_reason)"
            "  WHERE t.id = p.id AND t.claimed_by = $2"
            "), hint AS ("
            "  SELECT pg_notify($20, $21) WHERE EXISTS (SELECT FROM ins WHERE status = 'queued')"
            ") "
            "SELECT (SELECT coalesce(array_agg(id), '{}') FROM mine),"
            " (SELECT coalesce(array_agg(owner), '{}') FROM mine),"
            " (SELECT coalesce(array_agg(attempts), '{}') FROM mine),"
            " (SELECT coalesce(array_agg(id), '{}') FROM ins),"
            " (SELECT count(*) FROM hint)",
            list(wanted),
            node,
            now,
            [new.id for _, new in runs],
            [task_id for task_id, _ in runs],
            [str(new.trigger) for _, new in runs],
            [new.scheduled_for for _, new in runs],
            [new.due_at for _, new in runs],
            [str(new.status) for _, new in runs],
            [now if new.status.is_terminal else None for _, new in runs],
            [_dumps_or_none(new.output) for _, new in runs],
            [_no_nul(new.error_message) for _, new in runs],
            [new.counts for _, new in runs],
            [_dumps_or_none(new.input) for _, new in runs],
            [plan.task_id for plan in plans],
            [plan.next_fire_at for plan in plans],
            [plan.last_fire_at for plan in plans],
            [None if plan.end is None else str(plan.end.status) for plan in plans],
            [None if plan.end is None else plan.end.reason for plan in plans],
            self.channel,
            self._hint_payload(due=True),
        )
        assert row is not None
        claimed = {t: (owner, n) for t, owner, n in zip(row[0], row[1], row[2], strict=True)}
        inserted = set(row[3])
        created: list[Run] = []
        lost: list[str] = []
        for plan in plans:
            found = claimed.get(plan.task_id)
            if found is None:
                lost.append(plan.task_id)
                continue
            owner, attempts = found
            created.extend(
                new_run_record(plan.task_id, owner, attempts, new, now)
                for new in plan.runs
                if new.id in inserted
            )
        return FireResult(created, [], lost)

    @staticmethod
    async def _write_fires(
        conn: asyncpg.Connection,
        node: str,
        now: datetime,
        accepted: Sequence[tuple[FirePlan, Task]],
        candidates: Sequence[tuple[Run, bool]],
    ) -> list[str]:
        """Insert the runs (a fire already recorded is skipped), move the tasks on, release
        their claims and flag runs to cancel, in one statement; returns the inserted run ids."""
        runs = [r for r, _ in candidates]
        cancel = [run_id for plan, _ in accepted for run_id in plan.cancel_run_ids]
        rows = await conn.fetch(
            "WITH ins AS ("
            "  INSERT INTO runs (id, task_id, owner, trigger, scheduled_for, due_at, status,"
            "    attempt, max_attempts, created_at, started_at, finished_at, duration_ms,"
            "    output, error_message, counts)"
            "  SELECT u.id, u.task_id, u.owner, u.trigger, u.scheduled_for, u.due_at, u.status,"
            "    u.attempt, u.max_attempts, $1, u.started_at, u.finished_at, u.duration_ms,"
            "    u.output::jsonb, u.error_message, u.counts"
            "  FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],"
            "    $7::timestamptz[], $8::text[], $9::int[], $10::timestamptz[], $11::text[],"
            "    $12::text[], $13::bool[], $21::int[], $22::timestamptz[], $23::bigint[])"
            "    WITH ORDINALITY AS u(id, task_id, owner, trigger,"
            "    scheduled_for, due_at, status, max_attempts, finished_at, output,"
            "    error_message, counts, attempt, started_at, duration_ms, n)"
            "  ORDER BY u.n"
            "  ON CONFLICT DO NOTHING"
            "  RETURNING id, task_id, counts"
            f"), counted AS ({_COUNTED}"
            "), moved AS ("
            "  UPDATE tasks t SET next_fire_at = p.next_fire_at, last_fire_at = p.last_fire_at,"
            "    run_count = t.run_count"
            "      + coalesce(((SELECT n FROM counted) ->> p.id)::bigint, 0),"
            "    status = p.status, end_reason = p.end_reason, claimed_by = NULL,"
            "    claim_expires_at = NULL, updated_at = $1"
            "  FROM unnest($14::text[], $15::timestamptz[], $16::timestamptz[], $17::text[],"
            "    $18::text[]) AS p(id, next_fire_at, last_fire_at, status, end_reason)"
            "  WHERE t.id = p.id AND t.claimed_by = $19"
            "), to_flag AS ("
            f"  SELECT id FROM runs WHERE id = ANY($20::text[]) AND {_UNFINISHED}"
            "  ORDER BY id FOR UPDATE"
            "), flagged AS ("
            "  UPDATE runs r SET cancel_requested = true FROM to_flag f WHERE r.id = f.id"
            ") "
            "SELECT id FROM ins",
            now,
            [r.id for r in runs],
            [r.task_id for r in runs],
            [r.owner for r in runs],
            [str(r.trigger) for r in runs],
            [r.scheduled_for for r in runs],
            [r.due_at for r in runs],
            [str(r.status) for r in runs],
            [r.max_attempts for r in runs],
            [r.finished_at for r in runs],
            [_dumps_or_none(r.output) for r in runs],
            [_no_nul(r.error_message) for r in runs],
            [counts for _, counts in candidates],
            [task.id for _, task in accepted],
            [plan.next_fire_at for plan, _ in accepted],
            [plan.last_fire_at for plan, _ in accepted],
            [str(plan.end.status if plan.end else task.status) for plan, task in accepted],
            [plan.end.reason if plan.end else task.end_reason for plan, task in accepted],
            node,
            cancel,
            [r.attempt for r in runs],
            [r.started_at for r in runs],
            [r.duration_ms for r in runs],
        )
        return [r["id"] for r in rows]

    @staticmethod
    async def _mark_ends_announced(conn: asyncpg.Connection, task_ids: Sequence[str]) -> set[str]:
        """Of these tasks, those that have ended as expired, have no unfinished run left and
        were not announced yet; they are marked announced here, so each is announced once."""
        if not task_ids:
            return set()
        rows = await conn.fetch(
            "UPDATE tasks t SET end_announced = true "
            "WHERE t.id = ANY($1::text[]) AND t.status = 'expired' AND NOT t.end_announced "
            f"AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.task_id = t.id AND r.{_UNFINISHED}) "
            "RETURNING t.id",
            list(task_ids),
        )
        return {r["id"] for r in rows}

    async def _append_events(
        self, conn: asyncpg.Connection, pending: Sequence[_PendingEvent], *, due: bool = False
    ) -> list[Event]:
        """Append events in the given order (and the callback deliveries they create), as the
        last write of the transaction: the events lock is held until commit, so cursors commit
        in order (see the module docstring). The same statement notifies the other nodes of
        the owners that have new events (and, with `due`, that something may be due)."""
        if not pending:
            if due:
                await self._hint(conn, due=True)
            return []
        cursors = await conn.fetch(self._append_events_sql, *self._events_args(pending, due))
        return _written(pending, cursors)

    #: The events of `_append_events` as CTEs after a statement's own, with `_events_args` as
    #: $1..$14: the events lock, then the cursors, the deliveries, the hint and the events
    #: (`ev`, their cursors). The lock is taken when {guard} (a FROM … WHERE) lets it.
    _EVENTS_CTES = (
        "l AS MATERIALIZED (SELECT pg_advisory_xact_lock($1, $2){guard}), "
        "c AS MATERIALIZED (SELECT nextval(pg_get_serial_sequence('events', 'cursor'))"
        "  AS cursor FROM l, generate_series(1, $3)), "
        "s AS MATERIALIZED (SELECT cursor, row_number() OVER (ORDER BY cursor) AS n FROM c), "
        "u AS (SELECT * FROM unnest($4::text[], $5::text[], $6::text[], $7::text[],"
        "  $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::text[])"
        "  WITH ORDINALITY AS u(owner, type, task_id, run_id, created_at, payload,"
        "  delivery_id, url, body, n)), "
        "delivered AS ("
        "  INSERT INTO deliveries (id, owner, task_id, event_cursor, event_type, url, body,"
        "    status, attempts, next_attempt_at, created_at)"
        "  SELECT u.delivery_id, u.owner, u.task_id, s.cursor, u.type, u.url, u.body,"
        "    'pending', 0, u.created_at, u.created_at"
        "  FROM s JOIN u ON u.n = s.n WHERE u.delivery_id IS NOT NULL"
        "), "
        "hint AS MATERIALIZED (SELECT pg_notify($13, $14) FROM l), "
        "ev AS ("
        "  INSERT INTO events (cursor, owner, type, task_id, run_id, created_at, payload)"
        "  SELECT s.cursor, u.owner, u.type, u.task_id, u.run_id, u.created_at,"
        "  u.payload::jsonb FROM s JOIN u ON u.n = s.n CROSS JOIN hint"
        "  RETURNING cursor"
        ")"
    )
    _append_events_sql = "WITH " + _EVENTS_CTES.format(guard="") + " SELECT cursor FROM ev"

    def _events_args(self, pending: Sequence[_PendingEvent], due: bool) -> list[Any]:
        return [
            _LOCK_CLASS,
            self._events_lock,
            len(pending),
            [p.owner for p in pending],
            [str(p.event.type) for p in pending],
            [p.event.task_id for p in pending],
            [p.event.run_id for p in pending],
            [p.created_at for p in pending],
            [p.payload for p in pending],
            [p.delivery_id for p in pending],
            [p.url for p in pending],
            [p.body for p in pending],
            self.channel,
            self._hint_payload(due=due, owners=[p.owner for p in pending]),
        ]

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
        # Claims are marked, so each step is its own transaction and nodes share the work.
        return await fire_and_start_in_steps(
            self, node, now, limit=limit, lease=lease, plan=plan, start_limit=start_limit
        )

    async def release_tasks(self, node: str, task_ids: Sequence[str]) -> None:
        if not task_ids:
            return

        async def fn(conn: asyncpg.Connection) -> None:
            await conn.execute(
                "UPDATE tasks SET claimed_by = NULL, claim_expires_at = NULL "
                "WHERE claimed_by = $1 AND id = ANY($2::text[])",
                node,
                list(task_ids),
            )
            await self._hint(conn, due=True)

        await self._write(fn)

    # --- runs -----------------------------------------------------------------------------
    async def create_run(self, owner: str | None, task_id: str, run: NewRun, now: datetime) -> Run:
        async def fn(conn: asyncpg.Connection) -> Run:
            # FOR SHARE: the task cannot be deleted under the new run.
            task = _task_from_row(await self._task_row(conn, owner, task_id, "FOR SHARE"))
            created = await self._insert_run(conn, task, run, now)
            await self._hint(conn, due=True)
            return created

        return await self._tx(fn)

    async def create_event_run(
        self, task_id: str, event_id: str, run: NewRun, now: datetime
    ) -> tuple[str, bool]:
        seen = "SELECT run_id FROM trigger_events WHERE task_id = $1 AND event_id = $2"

        async def fn(conn: asyncpg.Connection) -> tuple[str, bool]:
            found = await conn.fetchval(seen, task_id, event_id)
            if found is not None:
                return str(found), False
            task = _task_from_row(await self._task_row(conn, None, task_id, "FOR SHARE"))
            # A concurrent delivery of the same event waits here for the first to commit.
            claimed = await conn.fetchval(
                "INSERT INTO trigger_events (task_id, event_id, run_id, received_at) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING run_id",
                task_id,
                event_id,
                run.id,
                now,
            )
            if claimed is None:
                return str(await conn.fetchval(seen, task_id, event_id)), False
            await self._insert_run(conn, task, run, now)
            await self._hint(conn, due=True)
            return run.id, True

        return await self._tx(fn)

    async def event_run_id(self, task_id: str, event_id: str) -> str | None:
        found = await self._call(
            lambda c: c.fetchval(
                "SELECT run_id FROM trigger_events WHERE task_id = $1 AND event_id = $2",
                task_id,
                event_id,
            )
        )
        return None if found is None else str(found)

    async def count_runs_since(self, task_id: str, trigger: Trigger, since: datetime) -> int:
        count = await self._call(
            lambda c: c.fetchval(
                "SELECT count(*) FROM runs WHERE task_id = $1 AND trigger = $2 "
                "AND created_at >= $3",
                task_id,
                str(trigger),
                since,
            )
        )
        return int(count)

    async def _insert_run(
        self, conn: asyncpg.Connection, task: Task, run: NewRun, now: datetime
    ) -> Run:
        created = new_run_record(task.id, task.owner, task.retry.attempts, run, now)
        inserted = await conn.fetchval(
            "INSERT INTO runs (id, task_id, owner, trigger, scheduled_for, due_at, status, "
            "attempt, max_attempts, created_at, finished_at, output, error_message, counts, "
            "input) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $10, $11::jsonb, $12, $13, "
            "$14::jsonb) ON CONFLICT DO NOTHING RETURNING id",
            created.id,
            created.task_id,
            created.owner,
            str(created.trigger),
            created.scheduled_for,
            created.due_at,
            str(created.status),
            created.max_attempts,
            now,
            created.finished_at,
            _dumps_or_none(created.output),
            _no_nul(created.error_message),
            run.counts,
            _dumps_or_none(run.input),
        )
        if inserted is None:
            raise StoreError(f"run {run.id} for {run.scheduled_for} exists already")
        return created

    async def claim_runs(self, node: str, now: datetime, limit: int, lease: timedelta) -> list[Run]:
        async def fn(conn: asyncpg.Connection) -> list[Run]:
            rows = await self._claim_runs_on(conn, node, now, limit, lease, start=False)
            return [_run_from_row(r) for r in rows]

        return await self._tx(fn)

    async def start_due_runs(
        self, node: str, now: datetime, limit: int, lease: timedelta
    ) -> list[tuple[Run, Task]]:
        async def fn(conn: asyncpg.Connection) -> list[_Started]:
            rows = await self._claim_runs_on(conn, node, now, limit, lease, start=True)
            return [
                _Started(node, _run_from_row(r), _task_from_row(r[_RUN_WIDTH:]), r[-2], r[-1])
                for r in rows
            ]

        started = await self._tx(fn)
        for item in started:
            self._started.keep(item.run.id, item)  # forgets the oldest: its finish never came
        return [(item.run, item.task) for item in started]

    async def _claim_runs_on(
        self,
        conn: asyncpg.Connection,
        node: str,
        now: datetime,
        limit: int,
        lease: timedelta,
        *,
        start: bool,
    ) -> list[asyncpg.Record]:
        """Claim queued runs due at `now` for `node`, in due order (inside a transaction); with
        `start`, start their next attempt too. Rows of `_RUN_COLUMNS` as written, followed
        with `start` by their task's `_TASK_COLUMNS`."""
        # Candidates in due order, locked so no other claimant takes them meanwhile.
        rows = await conn.fetch(
            "SELECT r.id, r.task_id, t.overlap != 'allow' FROM runs r "
            "JOIN tasks t ON t.id = r.task_id "
            "WHERE r.status = 'queued' AND r.due_at <= $1 "
            "AND (r.claimed_by IS NULL OR r.lease_expires_at < $1) "
            "ORDER BY r.due_at, r.id LIMIT $2 FOR UPDATE OF r SKIP LOCKED",
            now,
            limit * 4,
        )
        if not rows:
            return []
        exclusive = sorted({r[1] for r in rows if r[2]})
        if exclusive:
            # One claimant at a time per task that does not allow overlap; the next statement
            # (a fresh snapshot, which sees the other's committed claim) looks at which of
            # them are busy.
            keys = sorted({_task_lock_key(self.schema, t) for t in exclusive})
            await conn.execute(
                "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) "
                "WITH ORDINALITY AS u(k, n) ORDER BY n",
                keys,
            )
        return list(
            await conn.fetch(
                self._start_due_sql if start else self._claim_sql,
                now,
                node,
                now + lease,
                limit,
                [r[0] for r in rows],
                [r[1] for r in rows],
                [r[2] for r in rows],
                exclusive,
            )
        )

    #: Of the candidates ($5 ids, $6 task ids, $7 whether the task is exclusive, in due order),
    #: the first run of each exclusive task that is not busy (none of the tasks in $8 with a
    #: run running or claimed) and every run of the others, at most $4, claimed for $2 until
    #: $3. {start} sets them running at $1 and records their attempts.
    _CHOOSE_AND_CLAIM = (
        "WITH cand AS ("
        "  SELECT * FROM unnest($5::text[], $6::text[], $7::bool[]) WITH ORDINALITY"
        "    AS u(id, task_id, excl, n)"
        "), busy AS ("
        # A probe of `runs_task` per task (a LATERAL … LIMIT is never turned into a scan
        # of the whole table).
        "  SELECT x.task_id FROM unnest($8::text[]) AS x(task_id), LATERAL ("
        "    SELECT FROM runs r"
        f"    WHERE r.task_id = x.task_id AND r.{_UNFINISHED} AND (r.status = 'running'"
        "    OR (r.claimed_by IS NOT NULL AND r.lease_expires_at >= $1)) LIMIT 1) b"
        "), chosen AS ("
        "  SELECT id, n FROM ("
        "    SELECT id, n, row_number() OVER (PARTITION BY"
        "      CASE WHEN excl THEN task_id ELSE id END ORDER BY n) AS k"
        "    FROM cand WHERE NOT (excl AND task_id IN (SELECT task_id FROM busy))"
        "  ) ranked WHERE k = 1 ORDER BY n LIMIT $4"
        "), claimed AS ("
        "  UPDATE runs r SET claimed_by = $2, lease_expires_at = $3{start}"
        "  FROM chosen WHERE r.id = chosen.id"
        f"  RETURNING {', '.join('r.' + c for c in _cols(_RUN_COLUMNS))}, chosen.n, r.xmin"
        "){recorded} "
    )
    _claim_sql = (
        _CHOOSE_AND_CLAIM.format(start="", recorded="")
        + f"SELECT {_RUN_COLUMNS} FROM claimed ORDER BY n"
    )
    _start_due_sql = _CHOOSE_AND_CLAIM.format(
        start=(
            ", status = 'running', attempt = r.attempt + 1, started_at = coalesce(r.started_at, $1)"
        ),
        recorded=(
            ", recorded AS ("
            "  INSERT INTO attempts (run_id, number, status, started_at, node)"
            "  SELECT id, attempt, 'running', $1, $2 FROM claimed"
            "  ON CONFLICT (run_id, number) DO UPDATE SET status = 'running',"
            "    started_at = excluded.started_at, finished_at = NULL, error_message = NULL,"
            "    node = excluded.node"
            ")"
        ),
    ) + (
        f"SELECT {', '.join('c.' + c for c in _cols(_RUN_COLUMNS))}, "
        f"{', '.join('t.' + c for c in _cols(_TASK_COLUMNS))}, c.xmin::text, t.xmin::text "
        "FROM claimed c JOIN tasks t ON t.id = c.task_id ORDER BY c.n"
    )

    async def start_attempts(self, node: str, now: datetime, run_ids: Sequence[str]) -> list[Run]:
        if not run_ids:
            return []

        async def fn(conn: asyncpg.Connection) -> list[Run]:
            rows = await conn.fetch(self._start_sql, now, node, list(run_ids))
            by_id = {r["id"]: _run_from_row(r) for r in rows}
            return [by_id[i] for i in run_ids if i in by_id]

        return await self._write(fn)

    #: Start the next attempt of runs claimed by $2 ($3: their ids) at $1; the running rows.
    _start_sql = (
        "WITH l AS ("
        "  SELECT id, status FROM runs"
        f"  WHERE id = ANY($3::text[]) AND {_UNFINISHED} AND claimed_by = $2"
        "  ORDER BY id FOR UPDATE"
        "), started AS ("
        "  UPDATE runs r SET status = 'running', attempt = r.attempt + 1,"
        "    started_at = coalesce(r.started_at, $1)"
        "  FROM l WHERE r.id = l.id AND l.status = 'queued'"
        f"  RETURNING {', '.join('r.' + c for c in _cols(_RUN_COLUMNS))}"
        "), live AS ("
        "  SELECT * FROM started UNION ALL"
        f"  SELECT {_RUN_COLUMNS} FROM runs"
        "  WHERE claimed_by = $2 AND status = 'running' AND id = ANY($3::text[])"
        "), recorded AS ("
        "  INSERT INTO attempts (run_id, number, status, started_at, node)"
        "  SELECT id, attempt, 'running', $1, $2 FROM live"
        "  ON CONFLICT (run_id, number) DO UPDATE SET status = 'running',"
        "    started_at = excluded.started_at, finished_at = NULL, error_message = NULL,"
        "    node = excluded.node"
        ") "
        "SELECT * FROM live"
    )

    async def extend_leases(
        self, node: str, run_ids: Sequence[str], until: datetime
    ) -> tuple[set[str], set[str]]:
        if not run_ids:
            return set(), set()
        rows = await self._write(
            lambda c: c.fetch(
                "WITH l AS ("
                "  SELECT id FROM runs"
                f"  WHERE claimed_by = $2 AND id = ANY($3::text[]) AND {_UNFINISHED}"
                "  ORDER BY id FOR UPDATE"
                ") "
                "UPDATE runs r SET lease_expires_at = $1 FROM l WHERE r.id = l.id "
                "RETURNING r.id, r.cancel_requested",
                until,
                node,
                list(run_ids),
            )
        )
        return {r["id"] for r in rows}, {r["id"] for r in rows if r["cancel_requested"]}

    async def finish_runs(
        self, node: str, outcomes: Sequence[RunOutcome]
    ) -> tuple[list[Run], list[Event]]:
        if not outcomes:
            return [], []
        try:
            started = self._started_of(node, outcomes)
            if started is not None:
                done = await self._write(lambda conn: self._finish_started(conn, started))
                if done is not None:
                    return done
            return await self._finish_runs_read(node, outcomes)
        finally:
            for outcome in outcomes:
                self._started.pop(outcome.run_id, None)

    def _started_of(
        self, node: str, outcomes: Sequence[RunOutcome]
    ) -> list[tuple[_Started, RunOutcome]] | None:
        """The outcomes with their runs as this object started them, when it started them all
        for `node` and each ends the run (no retry) of a task that had not ended as expired;
        else None."""
        found: list[tuple[_Started, RunOutcome]] = []
        seen: set[str] = set()
        for outcome in outcomes:
            item = self._started.get(outcome.run_id)
            if (
                item is None
                or item.node != node
                or outcome.retry_at is not None
                or outcome.run_id in seen
                or item.task.status == TaskStatus.EXPIRED
            ):
                return None
            seen.add(outcome.run_id)
            found.append((item, outcome))
        return found

    async def _finish_started(
        self, conn: asyncpg.Connection, started: Sequence[tuple[_Started, RunOutcome]]
    ) -> tuple[list[Run], list[Event]] | None:
        """`finish_runs` in one statement, from the runs and tasks as `start_due_runs` read
        them: written only if neither row changed since (same `xmin`: the run still claimed
        and running as started, no lease renewed, no cancellation asked, the task not fired
        nor edited) and no task depends on one that succeeded; None (nothing written)
        otherwise, for `_finish_runs_read`."""
        handled = [(_run_after(item.run, outcome), outcome) for item, outcome in started]
        tasks = {item.task.id: item for item, _ in started}
        pending = [
            _PendingEvent(
                item.task.owner,
                NewEvent(
                    event_type_for(item.task, run),
                    item.task.id,
                    run.id,
                    run_event_payload(item.task, run),
                ),
                outcome.finished_at,
                item.task.callback_url,
            )
            for (item, _), (run, outcome) in zip(started, handled, strict=True)
        ]
        row = await conn.fetchrow(
            self._finish_started_sql,
            *self._outcome_args(handled),
            *self._events_args(pending, False),
            list(tasks),
            sorted(f"{task_id}:{item.task_xmin}" for task_id, item in tasks.items()),
            [item.run.id for item, _ in started],
            sorted(f"{item.run.id}:{item.run_xmin}" for item, _ in started),
            list({run.task_id for run, _ in handled if run.status == RunStatus.SUCCESS}),
        )
        assert row is not None
        if not row[0]:
            return None
        return [run for run, _ in handled], _written_cursors(pending, row[1])

    async def _finish_runs_read(
        self, node: str, outcomes: Sequence[RunOutcome]
    ) -> tuple[list[Run], list[Event]]:
        """`finish_runs` from the rows as they are now: read (locked) first, then written."""
        run_ids = list(dict.fromkeys(o.run_id for o in outcomes))

        async def fn(conn: asyncpg.Connection) -> tuple[list[Run], list[Event]]:
            tasks: dict[str, Task] = {}
            with_dependents: set[str] = set()
            held: dict[str, Run] = {}
            for r in await conn.fetch(self._finish_lock_sql, run_ids):
                if r[0] is not None:  # a run
                    if r[15] == node and r[6] in ("queued", "running"):
                        held[r[0]] = _run_from_row(r)
                else:  # a task
                    tasks[r[_RUN_WIDTH]] = _task_from_row(r[_RUN_WIDTH:])
                    if r[-1]:
                        with_dependents.add(r[_RUN_WIDTH])
            handled: list[tuple[Run, RunOutcome]] = []
            for outcome in outcomes:
                run = held.pop(outcome.run_id, None)
                if run is None:
                    continue  # not ours (any more), gone, or already handled in this batch
                handled.append((_run_after(run, outcome), outcome))
            if not handled:
                return [], []

            # Events in outcome order; an expired task's announcement follows its last run.
            pending: list[_PendingEvent | _EndMark] = []
            for run, outcome in handled:
                task = tasks.get(run.task_id)
                if run.status == RunStatus.QUEUED or task is None:
                    continue  # retried, or deleted while running: no one to tell
                pending.append(
                    _PendingEvent(
                        task.owner,
                        NewEvent(
                            event_type_for(task, run), task.id, run.id, run_event_payload(task, run)
                        ),
                        outcome.finished_at,
                        task.callback_url,
                    )
                )
                if task.status == TaskStatus.EXPIRED:
                    pending.append(_EndMark(task, outcome.finished_at))
            written = [run for run, _ in handled]
            retried = any(run.status == RunStatus.QUEUED for run in written)
            ending = [p.task.id for p in pending if isinstance(p, _EndMark)]
            if ending:
                # Whether an expired task's last run just ended is read after the runs are
                # written.
                await self._write_outcomes(conn, handled)
                announced = await self._mark_ends_announced(conn, list(dict.fromkeys(ending)))
                queued = await self._queue_dependents(conn, tasks, with_dependents, written)
                events = await self._append_events(
                    conn, _place_ends(pending, announced), due=retried or queued
                )
                return written, events
            queued = await self._queue_dependents(conn, tasks, with_dependents, written)
            due = retried or queued
            if not pending:
                await self._write_outcomes(conn, handled)
                if due:
                    await self._hint(conn, due=True)
                return written, []
            # The usual case: the runs, their attempts and their events in one statement.
            plain = [p for p in pending if isinstance(p, _PendingEvent)]
            cursors = await conn.fetch(
                self._finish_sql, *self._outcome_args(handled), *self._events_args(plain, due)
            )
            return written, _written(plain, cursors)

        return await self._tx(fn)

    #: The runs of $1 (`_RUN_COLUMNS`, then nulls) and their tasks (nulls, `_TASK_COLUMNS`,
    #: whether an active task depends on it), all locked: tasks first, then runs (the
    #: runs' lock waits on the count of the tasks'), the order every writer locks them in.
    _finish_lock_sql = (
        "WITH t AS MATERIALIZED ("
        f"  SELECT {_TASK_COLUMNS} FROM tasks"
        "  WHERE id IN (SELECT task_id FROM runs WHERE id = ANY($1::text[]))"
        "  ORDER BY id FOR UPDATE"
        "), r AS MATERIALIZED ("
        f"  SELECT {_RUN_COLUMNS} FROM runs"
        "  WHERE id = ANY($1::text[]) AND (SELECT count(*) FROM t) >= 0"
        "  ORDER BY id FOR UPDATE"
        ") "
        f"SELECT r.*, {', '.join('(NULL::tasks).' + c for c in _cols(_TASK_COLUMNS))},"
        " NULL::boolean FROM r "
        "UNION ALL "
        f"SELECT {', '.join('(NULL::runs).' + c for c in _cols(_RUN_COLUMNS))}, t.*,"
        " d.found IS NOT NULL FROM t LEFT JOIN LATERAL ("
        "  SELECT true AS found FROM tasks d WHERE d.depends_on = t.id AND d.status = 'active'"
        "  LIMIT 1) d ON true"
    )

    async def _queue_dependents(
        self,
        conn: asyncpg.Connection,
        tasks: Mapping[str, Task],
        with_dependents: set[str],
        written: Sequence[Run],
    ) -> bool:
        """A run, with the upstream run as input, for each active task that depends on the
        task of a run that just succeeded (of `tasks`, those `with_dependents` may have one);
        whether any was queued."""
        succeeded = [
            r
            for r in written
            if r.status == RunStatus.SUCCESS and r.task_id in tasks and r.task_id in with_dependents
        ]
        if not succeeded:
            return False
        rows = await conn.fetch(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE status = 'active' "
            "AND depends_on = ANY($1::text[]) ORDER BY id",
            list({r.task_id for r in succeeded}),
        )
        dependents: dict[str, list[Task]] = {}
        for row in rows:
            task = _task_from_row(row)
            assert task.depends_on is not None
            dependents.setdefault(task.depends_on, []).append(task)
        queued = False
        for run in succeeded:
            upstream = tasks[run.task_id]
            for task in dependents.get(run.task_id, ()):
                if task.owner == upstream.owner:
                    assert run.finished_at is not None
                    new = dependency_run(upstream, run)
                    await self._insert_run(conn, task, new, run.finished_at)
                    queued = True
        return queued

    @staticmethod
    async def _write_outcomes(
        conn: asyncpg.Connection, handled: Sequence[tuple[Run, RunOutcome]]
    ) -> None:
        """Close the attempts and write the runs (queued again or final), in one statement."""
        await conn.execute(
            "WITH " + PostgresStore._OUTCOME_CTES.format(guard="") + " SELECT",
            *PostgresStore._outcome_args(handled),
        )

    #: Close the attempts and write the runs (queued again or final), with `_outcome_args`
    #: as $1..$10, where {guard} (a condition) holds.
    _OUTCOME_CTES = (
        "closed AS ("
        "  UPDATE attempts a SET status = u.status, finished_at = u.finished_at,"
        "    error_message = u.error_message"
        "  FROM unnest($1::text[], $2::int[], $3::text[], $4::timestamptz[], $5::text[])"
        "    AS u(run_id, number, status, finished_at, error_message)"
        # The ANY reads the attempts by primary key whatever the statistics (see _PLANNER).
        "  WHERE a.run_id = ANY($1::text[]) AND a.run_id = u.run_id AND a.number = u.number"
        "{guard}"
        "), finished AS ("
        "  UPDATE runs r SET status = u.status, due_at = coalesce(u.due_at, r.due_at),"
        "    finished_at = CASE WHEN u.final THEN u.finished_at ELSE r.finished_at END,"
        "    duration_ms = CASE WHEN u.final THEN u.duration_ms ELSE r.duration_ms END,"
        "    output = u.output::jsonb, error_message = u.error_message,"
        "    claimed_by = NULL, lease_expires_at = NULL"
        "  FROM unnest($1::text[], $6::text[], $7::timestamptz[], $4::timestamptz[],"
        "    $8::bigint[], $9::text[], $5::text[], $10::bool[])"
        "    AS u(id, status, due_at, finished_at, duration_ms, output, error_message, final)"
        "  WHERE r.id = u.id{guard}"
        ")"
    )
    #: `finish_runs` after reading the rows: the outcomes, then the events.
    _finish_sql = (
        "WITH "
        + _OUTCOME_CTES.format(guard="")
        + ", "
        + _shift(_EVENTS_CTES.format(guard=""), 10)
        + " SELECT cursor FROM ev"
    )
    #: `finish_runs` of runs this object started, in one statement (see `_finish_started`):
    #: the tasks ($25) then the runs ($27) locked, in the order every writer takes them;
    #: both as read when started ($26, $28: sorted 'id:xmin'), and no active task depends
    #: on the tasks of the runs that succeeded ($29)? Only then the outcomes and the
    #: events are written.
    _finish_started_sql = (
        "WITH locked_tasks AS MATERIALIZED ("
        "  SELECT id, xmin FROM tasks WHERE id = ANY($25::text[]) ORDER BY id FOR UPDATE"
        "), locked_runs AS MATERIALIZED ("
        "  SELECT id, xmin FROM runs"
        "  WHERE id = ANY($27::text[]) AND (SELECT count(*) FROM locked_tasks) >= 0"
        "  ORDER BY id FOR UPDATE"
        "), ok AS MATERIALIZED ("
        "  SELECT (SELECT coalesce(array_agg(v ORDER BY v COLLATE \"C\"), '{{}}')"
        "    FROM (SELECT id || ':' || xmin AS v FROM locked_tasks) x) = $26::text[]"
        "  AND (SELECT coalesce(array_agg(v ORDER BY v COLLATE \"C\"), '{{}}')"
        "    FROM (SELECT id || ':' || xmin AS v FROM locked_runs) x) = $28::text[]"
        "  AND NOT EXISTS (SELECT FROM tasks d"
        "    WHERE d.depends_on = ANY($29::text[]) AND d.status = 'active') AS ok"
        "), "
        + _OUTCOME_CTES.format(guard=" AND (SELECT ok FROM ok)")
        + ", "
        + _shift(_EVENTS_CTES.format(guard=" FROM ok WHERE ok.ok"), 10)
        + " SELECT (SELECT ok FROM ok), (SELECT coalesce(array_agg(cursor), '{}') FROM ev)"
    ).replace("{{}}", "{}")

    @staticmethod
    def _outcome_args(handled: Sequence[tuple[Run, RunOutcome]]) -> list[Any]:
        runs = [run for run, _ in handled]
        final = [run.status != RunStatus.QUEUED for run in runs]
        return [
            [run.id for run in runs],
            [run.attempt for run in runs],
            [str(outcome.attempt_status) for _, outcome in handled],
            [outcome.finished_at for _, outcome in handled],
            [_no_nul(run.error_message) for run in runs],
            [str(run.status) for run in runs],
            [None if f else run.due_at for run, f in zip(runs, final, strict=True)],
            [run.duration_ms for run in runs],
            [_dumps_or_none(run.output) for run in runs],
            final,
        ]

    async def release_runs(self, node: str, run_ids: Sequence[str]) -> None:
        if not run_ids:
            return

        async def fn(conn: asyncpg.Connection) -> None:
            await conn.execute(
                "WITH l AS ("
                "  SELECT id FROM runs"
                "  WHERE claimed_by = $1 AND status = 'queued' AND id = ANY($2::text[])"
                "  ORDER BY id FOR UPDATE"
                ") "
                "UPDATE runs r SET claimed_by = NULL, lease_expires_at = NULL "
                "FROM l WHERE r.id = l.id",
                node,
                list(run_ids),
            )
            await self._hint(conn, due=True)

        await self._write(fn)

    async def claim_expired_runs(
        self, node: str, now: datetime, limit: int, lease: timedelta
    ) -> list[Run]:
        sql = (
            "WITH expired AS ("
            "  SELECT id FROM runs WHERE status = 'running' AND lease_expires_at < $1"
            "  ORDER BY lease_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED"
            ") "
            "UPDATE runs r SET claimed_by = $3, lease_expires_at = $4 FROM expired "
            f"WHERE r.id = expired.id RETURNING {', '.join('r.' + c for c in _cols(_RUN_COLUMNS))}"
        )

        async def fn(conn: asyncpg.Connection) -> list[Run]:
            rows = await conn.fetch(sql, now, limit, node, now + lease)
            return sorted((_run_from_row(r) for r in rows), key=lambda r: r.id)

        return await self._write(fn)

    async def backlog(self, now: datetime) -> tuple[int, int]:
        row = await self._call(
            lambda c: c.fetchrow(
                "SELECT (SELECT count(*) FROM tasks WHERE status = 'active' "
                "AND next_fire_at IS NOT NULL AND next_fire_at <= $1) AS tasks, "
                "(SELECT count(*) FROM runs WHERE status = 'queued' AND due_at <= $1) AS runs",
                now,
            )
        )
        assert row is not None
        return int(row["tasks"]), int(row["runs"])

    async def upcoming(self) -> Upcoming:
        row = await self._call(
            lambda c: c.fetchrow(
                "SELECT (SELECT min(next_fire_at) FROM tasks "
                "WHERE status = 'active' AND next_fire_at IS NOT NULL) AS fire_at, "
                "(SELECT min(due_at) FROM runs WHERE status = 'queued') AS run_due_at, "
                "(SELECT min(lease_expires_at) FROM runs WHERE status = 'running') AS expiry"
            )
        )
        assert row is not None
        return Upcoming(row["fire_at"], row["run_due_at"], row["expiry"])

    async def request_cancel(self, owner: str | None, run_ids: Sequence[str]) -> None:
        if not run_ids:
            return
        owner_check = "" if owner is None else " AND owner = $2"
        sql = (
            "WITH l AS ("
            f"  SELECT id FROM runs WHERE id = ANY($1::text[]) AND {_UNFINISHED}{owner_check}"
            "  ORDER BY id FOR UPDATE"
            ") "
            "UPDATE runs r SET cancel_requested = true FROM l WHERE r.id = l.id"
        )
        args: list[Any] = [list(run_ids)]
        if owner is not None:
            args.append(owner)
        await self._write(lambda c: c.execute(sql, *args))

    async def get_run(self, owner: str | None, run_id: str) -> Run:
        row = await self._call(
            lambda c: c.fetchrow(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = $1", run_id)
        )
        if row is None or (owner is not None and row["owner"] != owner):
            raise RunNotFound(run_id)
        return _run_from_row(row)

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

        async def fn(conn: asyncpg.Connection) -> list[Run]:
            if task_id is not None:
                owner_check = "" if owner is None else " AND owner = $2"
                found = await conn.fetchval(
                    f"SELECT 1 FROM tasks WHERE id = $1{owner_check}",
                    *((task_id,) if owner is None else (task_id, owner)),
                )
                if found is None:
                    raise TaskNotFound(task_id)
            return [_run_from_row(r) for r in await conn.fetch(sql, *args)]

        return await self._call(fn)

    async def list_attempts(self, owner: str | None, run_id: str) -> list[Attempt]:
        async def fn(conn: asyncpg.Connection) -> list[Attempt]:
            found = await conn.fetchval("SELECT owner FROM runs WHERE id = $1", run_id)
            if found is None or (owner is not None and found != owner):
                raise RunNotFound(run_id)
            return [
                Attempt(
                    run_id=r["run_id"],
                    number=r["number"],
                    status=AttemptStatus(r["status"]),
                    started_at=r["started_at"],
                    finished_at=r["finished_at"],
                    error_message=r["error_message"],
                    node=r["node"],
                )
                for r in await conn.fetch(
                    "SELECT run_id, number, status, started_at, finished_at, error_message, node "
                    "FROM attempts WHERE run_id = $1 ORDER BY number",
                    run_id,
                )
            ]

        return await self._call(fn)

    # --- events ---------------------------------------------------------------------------
    async def list_events(self, owner: str, *, after: int = 0, limit: int = 100) -> list[Event]:
        rows = await self._call(
            lambda c: c.fetch(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE owner = $1 AND cursor > $2 "
                "ORDER BY cursor LIMIT $3",
                owner,
                after,
                limit,
            )
        )
        return [_event_from_row(r) for r in rows]

    async def append_events(self, now: datetime, events: Sequence[NewEvent]) -> list[Event]:
        async def fn(conn: asyncpg.Connection) -> list[Event]:
            rows = await conn.fetch(
                "SELECT id, owner, callback_url FROM tasks WHERE id = ANY($1::text[])",
                list({e.task_id for e in events if e.task_id}),
            )
            owners = {r["id"]: (r["owner"], r["callback_url"]) for r in rows}
            pending = [
                _PendingEvent(owners[e.task_id][0], e, now, owners[e.task_id][1])
                for e in events
                if e.task_id in owners
            ]
            return await self._append_events(conn, pending)

        return await self._tx(fn)

    async def latest_cursor(self, owner: str) -> int:
        value = await self._call(
            lambda c: c.fetchval("SELECT max(cursor) FROM events WHERE owner = $1", owner)
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
        rows = await self._call(
            lambda c: c.fetch(
                "SELECT task_id, secret FROM callback_secrets WHERE task_id = ANY($1::text[]) "
                "AND (retires_at IS NULL OR retires_at > $2) ORDER BY task_id, created_at DESC",
                ids,
                now,
            )
        )
        found: dict[str, list[str]] = {}
        for r in rows:
            found.setdefault(r["task_id"], []).append(r["secret"])
        return found

    async def claim_deliveries(
        self, node: str, now: datetime, limit: int, lease: timedelta
    ) -> list[Delivery]:
        sql = (
            "WITH due AS ("
            "  SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1"
            "  AND (claimed_by IS NULL OR lease_expires_at < $1)"
            "  ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED"
            ") "
            "UPDATE deliveries d SET claimed_by = $3, lease_expires_at = $4 FROM due "
            f"WHERE d.id = due.id RETURNING {', '.join('d.' + c for c in _cols(_DELIVERY_COLUMNS))}"
        )

        async def fn(conn: asyncpg.Connection) -> list[Delivery]:
            rows = await conn.fetch(sql, now, limit, node, now + lease)
            found = [_delivery_from_row(r) for r in rows]
            found.sort(key=lambda d: (d.next_attempt_at or now, d.id))
            return found

        return await self._write(fn)

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
        # One statement for the batch. An id given twice counts once, at its first position
        # (an UPDATE … FROM changes each row once).
        first: dict[str, DeliveryOutcome] = {}
        for o in outcomes:
            first.setdefault(o.delivery_id, o)
        if not first:
            return []
        columns: tuple[list[Any], ...] = ([], [], [], [], [], [])
        for o in first.values():
            if o.delivered:
                status, due = "delivered", None
            elif o.retry_at is not None:
                status, due = "pending", o.retry_at
            else:
                status, due = "failed", None
            delivered_at = o.at if o.delivered else None
            values = (o.delivery_id, status, due, o.status_code, _no_nul(o.error), delivered_at)
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        rows = await self._write(
            lambda c: c.fetch(
                "UPDATE deliveries d SET status = u.status, attempts = d.attempts + 1, "
                "next_attempt_at = u.due, last_status = u.code, last_error = u.error, "
                "delivered_at = u.delivered_at, claimed_by = NULL, lease_expires_at = NULL "
                "FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::int[], $5::text[], "
                "$6::timestamptz[]) AS u(id, status, due, code, error, delivered_at) "
                "WHERE d.id = u.id AND d.claimed_by = $7 AND d.status = 'pending' "
                f"RETURNING {', '.join('d.' + c for c in _cols(_DELIVERY_COLUMNS))}",
                *columns,
                node,
            )
        )
        by_id = {r["id"]: _delivery_from_row(r) for r in rows}
        found: list[Delivery | None] = []
        for o in outcomes:
            found.append(by_id.pop(o.delivery_id, None))
        return found

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
        rows = await self._call(lambda c: c.fetch(sql, *args))
        return [_delivery_from_row(r) for r in rows]

    async def redeliver(self, owner: str | None, delivery_id: str, now: datetime) -> Delivery:
        owner_check = "" if owner is None else " AND owner = $3"
        args = (now, delivery_id) if owner is None else (now, delivery_id, owner)

        async def fn(conn: asyncpg.Connection) -> asyncpg.Record | None:
            row = await conn.fetchrow(
                "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, "
                "claimed_by = NULL, lease_expires_at = NULL "
                f"WHERE id = $2{owner_check} RETURNING {_DELIVERY_COLUMNS}",
                *args,
            )
            if row is not None:
                await self._hint(conn, due=True)
            return row

        row = await self._write(fn)
        if row is None:
            raise NotFound(f"no delivery with id {delivery_id!r}; list_deliveries shows them")
        return _delivery_from_row(row)

    async def next_delivery_due_at(self) -> datetime | None:
        value: datetime | None = await self._call(
            lambda c: c.fetchval(
                "SELECT min(next_attempt_at) FROM deliveries WHERE status = 'pending'"
            )
        )
        return value

    # --- retention ------------------------------------------------------------------------
    async def prune(
        self,
        now: datetime,
        *,
        runs_per_task: int,
        run_max_age: timedelta,
        event_max_age: timedelta,
    ) -> PruneCounts:
        terminal = "status NOT IN ('queued', 'running')"
        sql = (
            "WITH doomed AS ("
            f"  SELECT id FROM runs WHERE {terminal} AND finished_at < $1"
            "  UNION ALL"
            "  SELECT id FROM (SELECT id, finished_at, row_number() OVER"
            "    (PARTITION BY task_id ORDER BY id DESC) AS n FROM runs"
            f"    WHERE {terminal}) ranked WHERE n > $2 AND finished_at >= $1"
            "), locked AS ("
            "  SELECT id FROM runs WHERE id IN (SELECT id FROM doomed) ORDER BY id FOR UPDATE"
            "), gone_attempts AS ("
            "  DELETE FROM attempts WHERE run_id IN (SELECT id FROM locked)"
            "), gone_runs AS ("
            "  DELETE FROM runs WHERE id IN (SELECT id FROM locked) RETURNING 1"
            "), gone_events AS ("
            "  DELETE FROM events WHERE created_at < $3 RETURNING 1"
            "), gone_deliveries AS ("
            "  DELETE FROM deliveries WHERE status != 'pending' AND created_at < $3"
            "), gone_trigger_events AS ("
            "  DELETE FROM trigger_events WHERE received_at < $3"
            ") "
            "SELECT (SELECT count(*) FROM gone_runs) AS runs,"
            " (SELECT count(*) FROM gone_events) AS events"
        )

        async def fn(conn: asyncpg.Connection) -> PruneCounts:
            row = await conn.fetchrow(sql, now - run_max_age, runs_per_task, now - event_max_age)
            assert row is not None
            return PruneCounts(runs=row["runs"], events=row["events"])

        return await self._write(fn)
