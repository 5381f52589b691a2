"""Stores: one protocol (`base.Store`), one module per backend."""

from __future__ import annotations

from wakecall.store.base import (
    DueTask,
    FirePlan,
    FireResult,
    NewEvent,
    NewRun,
    PruneCounts,
    RunOutcome,
    Store,
    TaskEnd,
)
from wakecall.store.sqlite import SQLiteStore

__all__ = [
    "DueTask",
    "FirePlan",
    "FireResult",
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
    """A store for `url`: a file path, or `sqlite:///relative/path` / `sqlite:////abs/path`."""
    if url.startswith(("postgres://", "postgresql://")):
        from wakecall.errors import StoreError

        raise StoreError("this build of wakecall has no PostgreSQL store; use a SQLite file path")
    if url.startswith("sqlite:///"):
        return SQLiteStore(url[len("sqlite:///") :])
    return SQLiteStore(url)
