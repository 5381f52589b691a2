"""Shared fixtures: the anyio backend, and a store parametrized over every backend."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wakecall.store import SQLiteStore, Store

POSTGRES_URL = os.environ.get("WAKECALL_TEST_POSTGRES_URL")

STORE_KINDS = ["sqlite"] + (["postgres"] if POSTGRES_URL else [])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=STORE_KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An empty, open store of each kind."""
    if request.param == "sqlite":
        s: Store = SQLiteStore(tmp_path / "wakecall.db")
    else:  # pragma: no cover - exercised when a PostgreSQL server is configured
        from wakecall.store.postgres import PostgresStore

        s = PostgresStore(POSTGRES_URL or "", schema=f"t_{os.getpid()}_{id(request)}")
    await s.open()
    try:
        yield s
    finally:
        if request.param != "sqlite":
            await s.drop_schema()  # type: ignore[attr-defined]
        await s.close()
