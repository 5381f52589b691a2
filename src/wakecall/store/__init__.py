"""Stores: one protocol (`base.Store`), one module per backend."""

from __future__ import annotations

from wakecall.store.base import (
    RESYNC,
    DueTask,
    FirePlan,
    FireResult,
    Hint,
    HintListener,
    NewEvent,
    NewRun,
    PruneCounts,
    RunOutcome,
    Store,
    TaskEnd,
)
from wakecall.store.sqlite import SQLiteStore

__all__ = [
    "RESYNC",
    "DueTask",
    "FirePlan",
    "FireResult",
    "Hint",
    "HintListener",
    "NewEvent",
    "NewRun",
    "PruneCounts",
    "RunOutcome",
    "SQLiteStore",
    "Store",
    "TaskEnd",
    "open_store",
]


def open_store(url: str) -> Store:
    """A store for `url`: `postgresql://…` (needs asyncpg: `pip install wakecall[postgres]`),
    or a SQLite file path (`sqlite:///relative/path` and `sqlite:////abs/path` work too)."""
    if url.startswith(("postgres://", "postgresql://")):
        from wakecall.store.postgres import PostgresStore

        return PostgresStore(url)
    if url.startswith("sqlite:///"):
        return SQLiteStore(url[len("sqlite:///") :])
    return SQLiteStore(url)
