"""The PostgreSQL store's connections: the pool (and what each pooled connection is set up
with), calls, writes and transactions on it, errors translated, opening (with the schema
created or upgraded) and closing, and the clock offset to the database server."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import anyio
import asyncpg

from wakecall.errors import StoreError
from wakecall.ids import new_id
from wakecall.recent import Recent
from wakecall.store.flow import FlowGates
from wakecall.store.postgres.locks import _events_lock_key
from wakecall.store.postgres.migrations import prepare, read_version
from wakecall.store.postgres.started import _STARTED_MAX, _Started
from wakecall.store.urls import redact as _redact

log = logging.getLogger(__name__)

T = TypeVar("T")

_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

# Errors of the client or the connection (as opposed to a statement the server refused).
# InternalClientError: asyncpg's protocol state broke, seen when the server goes away while a
# pooled connection is being reset; the connection is dropped, so it counts as lost.
_CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.InternalClientError)

_OFFSET_WARNING = timedelta(seconds=1)
_LOST_CONNECTION = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InternalClientError,
)


class _PooledConnection(asyncpg.Connection):
    """A pooled connection released without asyncpg's reset query (`RESET ALL`, `CLOSE ALL`,
    `UNLISTEN *`, advisory unlock), a round trip per store call: the store leaves no session
    state behind (no SET, LISTEN, cursor or session-level lock). An open transaction is
    still rolled back on release."""

    def get_reset_query(self) -> str:
        return ""


class StoreConnection:
    """The connection pool of a `PostgresStore` and the transactions on it."""

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
        self._events_lock = _events_lock_key(schema)
        #: Rate gates found closed, between passes (see `store.flow`).
        self._flow = FlowGates()
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

    async def _call(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run `work(conn)` on a pooled connection (each statement commits on its own)."""
        pool = self._pool
        if pool is None:
            raise StoreError("the store is not open; call open() first")
        try:
            async with pool.acquire(timeout=self.command_timeout) as conn:
                return await work(conn)
        except asyncpg.IntegrityConstraintViolationError:
            raise
        except (*_CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
            raise self._translate(exc) from exc

    async def _write(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """`_call` for a write of one statement, shielded from cancellation: once sent, it
        completes (or fails) before the caller sees the cancellation, as a write to the SQLite
        store does. Bounded by `command_timeout`."""
        with anyio.CancelScope(shield=True):
            result = await self._call(work)
        return result

    async def _tx(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """`_write` for several statements: `work(conn)` runs in one transaction, rolled back on
        any error."""

        async def body(conn: asyncpg.Connection) -> T:
            async with conn.transaction():
                return await work(conn)

        return await self._write(body)

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
        return await read_version(conn, self.schema, self._where)

    async def _prepare(self, conn: asyncpg.Connection) -> None:
        await prepare(conn, self.schema, self._where)

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
