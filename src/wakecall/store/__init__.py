"""Stores: one protocol (`base.Store`), one module per backend."""

from __future__ import annotations

from datetime import timedelta

from wakecall.clock import Clock, OffsetClock, SystemClock
from wakecall.errors import InvalidInput
from wakecall.store.base import (
    RESYNC,
    DueTask,
    FirePlan,
    FireResult,
    Hint,
    HintListener,
    Instant,
    NewEvent,
    NewRun,
    PassResult,
    PruneCounts,
    RunOutcome,
    Store,
    TaskEnd,
    Upcoming,
)
from wakecall.store.sqlite import SQLiteStore

__all__ = [
    "RESYNC",
    "DueTask",
    "FirePlan",
    "FireResult",
    "Hint",
    "HintListener",
    "Instant",
    "NewEvent",
    "NewRun",
    "PassResult",
    "PruneCounts",
    "RunOutcome",
    "SQLiteStore",
    "Store",
    "TaskEnd",
    "Upcoming",
    "clock_of",
    "open_store",
]


def open_store(url: str, *, pg_schema: str = "wakecall", pg_pool: int = 10) -> Store:
    """A store for `url`: `postgresql://…` (needs asyncpg: `pip install wakecall[postgres]`),
    with its tables in the schema `pg_schema` and at most `pg_pool` connections; or a SQLite
    file path (`sqlite:///relative/path` and `sqlite:////abs/path` work too)."""
    if url.startswith(("postgres://", "postgresql://")):
        # lazy: asyncpg is an optional dependency (the `postgres` extra)
        from wakecall.store.postgres import PostgresStore

        try:
            return PostgresStore(url, schema=pg_schema, max_pool=pg_pool)
        except ValueError as exc:
            raise InvalidInput(f"PostgreSQL store settings: {exc}") from exc
    if url.startswith("sqlite:///"):
        return SQLiteStore(url[len("sqlite:///") :])
    return SQLiteStore(url)


def clock_of(store: Store) -> Clock:
    """The clock to schedule on `store` by: the database server's for a store that measures
    its offset (PostgreSQL, shared by nodes whose clocks may differ), else this machine's."""
    offset = getattr(store, "clock_offset", None)
    if isinstance(offset, timedelta):
        return OffsetClock(lambda: store.clock_offset)  # type: ignore[attr-defined]
    return SystemClock()
