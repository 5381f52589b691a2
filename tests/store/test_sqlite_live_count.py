"""Creating a task counts the owner's live (active or paused) tasks against its limit. The
SQLite store keeps that count in `live_tasks`, moved by triggers (schema 13), instead of
reading every task row the owner ever had: the count must follow every way a task's status
and existence change, and a file migrated from version 12 starts with the right counts."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from support.records import T0, make_task
from wakecall.errors import LimitReached
from wakecall.models import TaskStatus
from wakecall.store import SQLiteStore
from wakecall.store.base import NewTask
from wakecall.store.task_writes import OwnerLimits, TaskDeletion, TaskUpdate


def counted(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT owner, live FROM live_tasks WHERE live > 0"))


def recounted(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return dict(
            conn.execute(
                "SELECT owner, count(*) FROM tasks WHERE status IN ('active', 'paused') "
                "GROUP BY owner"
            )
        )


async def test_the_count_of_live_tasks_follows_every_change(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    store = SQLiteStore(path)
    await store.open()
    try:
        alice = [make_task() for _ in range(6)]
        bob = [make_task("bob"), make_task("bob", status=TaskStatus.PAUSED)]
        await store.write_tasks("alice", [NewTask(t) for t in alice], T0)
        await store.write_tasks("bob", [NewTask(t) for t in bob], T0)
        assert counted(path) == recounted(path) == {"alice": 6, "bob": 2}

        steps = [
            TaskUpdate(alice[0].id, {"status": TaskStatus.PAUSED}),  # live to live
            TaskUpdate(alice[1].id, {"status": TaskStatus.COMPLETED}),  # ends
            TaskUpdate(alice[2].id, {"status": TaskStatus.EXPIRED}),
            TaskUpdate(alice[3].id, {"name": "renamed"}),  # no status
            TaskDeletion(alice[4].id),
            TaskDeletion(alice[1].id),  # an ended one: no change
        ]
        for step in steps:
            await store.write_tasks("alice", [step], T0 + timedelta(minutes=1))
            assert counted(path) == recounted(path)
        assert counted(path)["alice"] == 3

        limits = OwnerLimits(max_tasks=4)
        await store.write_tasks("alice", [NewTask(make_task())], T0, limits=limits)
        with pytest.raises(LimitReached):
            await store.write_tasks("alice", [NewTask(make_task())], T0, limits=limits)
        assert counted(path) == recounted(path) == {"alice": 4, "bob": 2}
    finally:
        await store.close()

    with sqlite3.connect(path) as conn:  # any writer, not only the store's code
        conn.execute("UPDATE tasks SET status = 'completed' WHERE owner = 'bob'")
        conn.execute("UPDATE tasks SET owner = 'carol' WHERE id = ?", (alice[5].id,))
    assert counted(path) == recounted(path) == {"alice": 3, "carol": 1}


async def test_a_file_of_version_12_gets_the_counts_of_its_tasks(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = SQLiteStore(path)
    await store.open()
    try:
        alice = [make_task(), make_task(), make_task(status=TaskStatus.COMPLETED)]
        await store.write_tasks("alice", [NewTask(t) for t in alice], T0)
        await store.write_tasks("bob", [NewTask(make_task("bob")) for _ in range(2)], T0)
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        for trigger in ("insert", "delete", "update"):
            conn.execute(f"DROP TRIGGER live_tasks_{trigger}")
        conn.execute("DROP TABLE live_tasks")
        conn.execute("PRAGMA user_version = 12")
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    assert counted(path) == recounted(path) == {"alice": 2, "bob": 2}
