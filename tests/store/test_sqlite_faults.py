"""The SQLite store facing bad files, other writers and old schemas: clear errors, no damage."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from tests.support.records import T0, make_task

from support.records import add_task
from wakecall.engine import EngineConfig, TaskService
from wakecall.errors import DatabaseBusy, InvalidInput, NotAWakecallDatabase, StoreError
from wakecall.models import EventType, TaskSpec
from wakecall.store import RESYNC, Hint, NewEvent
from wakecall.store.sqlite import APPLICATION_ID, SCHEMA_VERSION, SQLiteStore
from wakecall.store.sqlite.migrations import _MIGRATIONS
from wakecall.testing import FakeClock


async def test_a_corrupt_file_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite at all\x00" * 200)
    store = SQLiteStore(path)
    with pytest.raises(NotAWakecallDatabase, match="not a wakecall database"):
        await store.open()
    assert path.read_bytes().startswith(b"this is not sqlite")


async def test_another_applications_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO invoices (total) VALUES (9.5)")
    with pytest.raises(NotAWakecallDatabase, match="1 tables of another application"):
        await SQLiteStore(path).open()
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert tables == ["invoices"]


async def test_a_database_from_a_newer_wakecall_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this wakecall"):
        await SQLiteStore(path).open()


async def test_an_older_schema_upgrades_itself_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        for statement in _MIGRATIONS[1].split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO events (owner, type, created_at, payload) "
            "VALUES ('alice', 'task.expired', 0, '{}')"
        )
    store = SQLiteStore(path)
    await store.open()
    try:
        assert await store.schema_version() == SCHEMA_VERSION
        assert [e.cursor for e in await store.list_events("alice")] == [1]
        assert await store.list_deliveries(None) == []
    finally:
        await store.close()


async def test_a_database_locked_by_another_writer_fails_clearly_and_writes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "busy.db"
    store = SQLiteStore(path, busy_timeout=0.2)
    await store.open()
    clock = FakeClock(datetime(2026, 1, 5, tzinfo=UTC))
    tasks = TaskService(store, clock=clock, config=EngineConfig())
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(DatabaseBusy, match="locked by another writer"):
            await tasks.create("alice", TaskSpec(name="t", schedule="@daily"))
        other.execute("ROLLBACK")
        assert await store.list_tasks(None) == []
        task = (await tasks.create("alice", TaskSpec(name="t", schedule="@daily"))).task
        assert (await store.get_task("alice", task.id)).name == "t"
    finally:
        other.close()
        await store.close()


async def test_a_write_waits_for_another_writer_without_holding_up_the_loop(
    tmp_path: Path,
) -> None:
    """SQLite runs on the loop's thread, so the store must never wait inside SQLite for a lock:
    while another connection holds the file, the loop keeps serving other work, and the write
    goes through once the lock is released."""
    path = tmp_path / "shared.db"
    store = SQLiteStore(path, busy_timeout=30)
    await store.open()
    tasks = TaskService(store, clock=FakeClock(), config=EngineConfig())
    other = sqlite3.connect(path, isolation_level=None)
    created: list[str] = []
    try:
        other.execute("BEGIN EXCLUSIVE")

        async def create() -> None:
            task = (await tasks.create("alice", TaskSpec(name="t", schedule="@daily"))).task
            created.append(task.id)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(create)
                turns = 0
                while turns < 20:  # the loop runs other work while the write waits
                    await anyio.sleep(0.005)
                    turns += 1
                assert created == []
                other.execute("ROLLBACK")
        assert len(created) == 1
        assert [t.id for t in await store.list_tasks(None)] == created
    finally:
        other.close()
        await store.close()


async def test_a_file_locked_while_another_process_creates_it_is_opened_once_free(
    tmp_path: Path,
) -> None:
    """Two servers started on one new file: the second finds it locked while the first
    creates the schema, and must wait for it, not call it a foreign database."""
    path = tmp_path / "new.db"
    other = sqlite3.connect(path, isolation_level=None)
    store = SQLiteStore(path, busy_timeout=30)
    opened = anyio.Event()
    try:
        other.execute("BEGIN EXCLUSIVE")
        other.execute("CREATE TABLE being_made (x)")
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:

                async def open_it() -> None:
                    await store.open()
                    opened.set()

                tg.start_soon(open_it)
                for _ in range(20):  # the open waits with the loop free
                    await anyio.sleep(0.005)
                assert not opened.is_set()
                other.execute("ROLLBACK")
        assert await store.schema_version() == SCHEMA_VERSION
    finally:
        other.close()
        await store.close()


async def test_huge_and_negative_inputs_are_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "w.db")
    await store.open()
    tasks = TaskService(store, clock=FakeClock(), config=EngineConfig())
    try:
        with pytest.raises(InvalidInput, match="long"):
            await tasks.create("a", TaskSpec(name="t", schedule="*" * 10_000_000))
        with pytest.raises(ValueError, match="timeout"):
            TaskSpec(name="t", schedule="@daily", timeout=timedelta(seconds=-5))
        with pytest.raises(ValueError, match="overlap"):
            TaskSpec(name="t", schedule="@daily", overlap="sometimes")  # type: ignore[arg-type]
        assert await store.list_tasks(None) == []
    finally:
        await store.close()


async def test_a_write_by_another_connection_is_hinted_and_ones_own_is_not(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared.db"
    watcher, writer = SQLiteStore(path, watch_interval=0.02), SQLiteStore(path)
    await watcher.open()
    await writer.open()
    heard: list[Hint] = []
    spec = TaskSpec(name="x", schedule="@every 1m")
    mine = TaskService(watcher, clock=FakeClock(), config=EngineConfig())
    theirs = TaskService(writer, clock=FakeClock(), config=EngineConfig())
    try:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(watcher.watch, heard.append)
                await mine.create("alice", spec)  # its own: no hint
                await anyio.sleep(0.2)  # several looks at the file find nothing new
                assert heard == []
                await theirs.create("alice", spec)
                while not heard:  # noqa: ASYNC110 - the watcher looks every 20 ms
                    await anyio.sleep(0.02)
                tg.cancel_scope.cancel()
        assert heard[0] == RESYNC
    finally:
        await watcher.close()
        await writer.close()


async def test_the_write_ahead_log_is_checkpointed_off_the_loop_and_stays_bounded(
    tmp_path: Path,
) -> None:
    """SQLite's own checkpoint would run inside a commit, on the loop's thread; the store turns
    it off and copies the log back on a thread of its own. Writes in a steady stream never
    find the log all copied, so the writer copies the last few pages itself and the log
    starts over: it stays a few megabytes long, with no write held up for the copy (the
    bound that would hold them, 256 MB, is far off)."""
    path = tmp_path / "wal.db"
    store = SQLiteStore(path)
    await store.open()
    now = datetime(2026, 1, 5, tzinfo=UTC)
    try:
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        task, _ = await add_task(store, make_task())
        big = {"blob": "x" * 50_000}
        written = 0
        for _ in range(480):  # 480 commits of ~50 KB: ~24 MB through the log
            events = await store.append_events(
                now, [NewEvent(EventType.TASK_EXPIRED, task.id, None, big)]
            )
            assert len(events) == 1
            written += 50_000
        assert written > 20_000_000
        wal = (tmp_path / "wal.db-wal").stat().st_size
        assert wal < 14_000_000, f"the log grew to {wal} bytes"
    finally:
        await store.close()


async def test_events_appended_through_two_connections_keep_one_increasing_log(
    tmp_path: Path,
) -> None:
    """A server and the command line on one file: every event gets the next cursor in commit
    order, its callback delivery points at it, and a transaction rolled back takes none."""
    path = tmp_path / "shared.db"
    server, cli = SQLiteStore(path), SQLiteStore(path)
    await server.open()
    await cli.open()
    try:
        task = make_task(callback_url="https://app.example/cb")
        await add_task(server, task)
        written = []
        for i in range(6):
            store = server if i % 2 == 0 else cli
            written += await store.append_events(
                T0,
                [
                    NewEvent(EventType.RUN_COMPLETED, task.id, None, {"n": i, "k": k})
                    for k in (0, 1)
                ],
            )

        def appended_then_failed(conn: sqlite3.Connection) -> None:
            server._append_event(conn, "alice", NewEvent(EventType.RUN_FAILED, task.id, None), 0)
            raise RuntimeError("the transaction fails after appending")

        with pytest.raises(RuntimeError):
            await server._tx(appended_then_failed)
        written += await cli.append_events(T0, [NewEvent(EventType.RUN_COMPLETED, task.id, None)])
        assert [e.cursor for e in written] == list(range(1, 14))
        assert await server.list_events("alice") == written
        deliveries = await cli.list_deliveries("alice", limit=100)
        assert sorted(d.event_cursor for d in deliveries) == list(range(1, 14))
    finally:
        await server.close()
        await cli.close()
