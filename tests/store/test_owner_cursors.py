"""A database of schema version 3 (one event cursor sequence across owners) upgraded to
per-owner cursors: the events keep their cursors, a position read before still returns every
later event of its owner, and new cursors count each owner's events from above the last
cursor given before the upgrade."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from support.records import T0, make_task
from wakecall.models import EventType
from wakecall.store import NewEvent, SQLiteStore, Store
from wakecall.store.base import NewTask
from wakecall.store.postgres import PostgresStore
from wakecall.store.postgres.migrations import _MIGRATIONS as PG_MIGRATIONS
from wakecall.store.sqlite import APPLICATION_ID
from wakecall.store.sqlite.migrations import _MIGRATIONS as SQLITE_MIGRATIONS

URL = os.environ.get("WAKECALL_TEST_POSTGRES_URL")

#: Events of version 3, cursors of one sequence: alice 1, 3, 5; bob 2, 4; 6 and 7 were
#: given and pruned since.
OLD_EVENTS = [(1, "alice"), (2, "bob"), (3, "alice"), (4, "bob"), (5, "alice")]
LAST_GIVEN = 7


async def check_upgraded(store: Store) -> None:
    assert [e.cursor for e in await store.list_events("alice")] == [1, 3, 5]
    assert [e.cursor for e in await store.list_events("alice", after=3)] == [5]
    alice, bob = make_task("alice"), make_task("bob")
    for task in (alice, bob):
        await store.write_tasks(task.owner, [NewTask(task)], T0)
    new = await store.append_events(
        T0,
        [
            NewEvent(EventType.RUN_STALE, alice.id, None),
            NewEvent(EventType.RUN_STALE, bob.id, None),
            NewEvent(EventType.RUN_STALE, alice.id, None),
        ],
    )
    assert [(e.owner, e.cursor) for e in new] == [("alice", 8), ("bob", 8), ("alice", 9)]
    # A position read before the upgrade misses nothing; new ones count alice's events only.
    assert [e.cursor for e in await store.list_events("alice", after=3)] == [5, 8, 9]
    assert [e.cursor for e in await store.list_events("alice", after=8)] == [9]
    assert await store.latest_cursor("alice") == 9
    # An owner the store never saw starts above the floor too.
    carol = make_task("carol")
    await store.write_tasks("carol", [NewTask(carol)], T0)
    (first,) = await store.append_events(T0, [NewEvent(EventType.RUN_STALE, carol.id, None)])
    assert first.cursor == LAST_GIVEN + 1


async def test_a_sqlite_file_of_version_3_gets_per_owner_cursors(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    with sqlite3.connect(path) as conn:
        for version in (1, 2, 3):
            for statement in SQLITE_MIGRATIONS[version].split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("PRAGMA user_version = 3")
        for cursor in range(1, LAST_GIVEN + 1):
            conn.execute(
                "INSERT INTO events (cursor, owner, type, created_at, payload) "
                "VALUES (?, ?, 'task.expired', 0, '{}')",
                (cursor, dict(OLD_EVENTS).get(cursor, "gone")),
            )
        conn.execute("DELETE FROM events WHERE cursor > 5")
    store = SQLiteStore(path)
    await store.open()
    try:
        await check_upgraded(store)
    finally:
        await store.close()


@pytest.mark.postgres
@pytest.mark.skipif(not URL, reason="set WAKECALL_TEST_POSTGRES_URL (scripts/start-postgres)")
async def test_a_postgres_schema_of_version_3_gets_per_owner_cursors() -> None:
    schema = f"cursors_{os.getpid()}"
    conn = await asyncpg.connect(URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE; CREATE SCHEMA "{schema}"')
        async with conn.transaction():
            await conn.execute(f'SET LOCAL search_path TO "{schema}"')
            for version in (1, 2, 3):
                await conn.execute(PG_MIGRATIONS[version])
            await conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
            for cursor in range(1, LAST_GIVEN + 1):
                await conn.execute(
                    "INSERT INTO events (owner, type, created_at, payload) "
                    "VALUES ($1, 'task.expired', now(), '{}')",
                    dict(OLD_EVENTS).get(cursor, "gone"),
                )
            await conn.execute("DELETE FROM events WHERE cursor > 5")
        store = PostgresStore(URL or "", schema=schema)
        await store.open()
        try:
            await check_upgraded(store)
        finally:
            await store.close()
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
