"""The contract of `Store.write_tasks` on every backend: all the writes or none, the owner's
task limit judged inside the transaction (also when many writers race), dry runs rolled back."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from support.records import T0, count_tasks, make_task
from wakecall.errors import Conflict, LimitReached, TaskNotFound
from wakecall.models import EventType, TaskStatus
from wakecall.store import NewEvent, SQLiteStore, Store
from wakecall.store.base import NewTask, OwnerLimits, TaskDeletion, TaskUpdate

POSTGRES_URL = os.environ.get("WAKECALL_TEST_POSTGRES_URL")
ONE, TWO = OwnerLimits(max_tasks=1), OwnerLimits(max_tasks=2)


async def test_every_write_lands_in_one_transaction_or_none_does(store: Store) -> None:
    kept = make_task()
    await store.write_tasks("alice", [NewTask(kept)], T0)
    new = make_task()
    with pytest.raises(TaskNotFound):
        await store.write_tasks(
            "alice",
            [
                NewTask(new),
                TaskUpdate(kept.id, {"name": "renamed"}),
                TaskUpdate("tsk_missing", {"name": "x"}),
            ],
            T0,
        )
    assert [t.id for t in await store.list_tasks("alice")] == [kept.id]
    assert (await store.get_task("alice", kept.id)).name == "report"


async def test_a_new_task_and_its_callback_secret_are_written_together(store: Store) -> None:
    task = make_task(callback_url="https://app.example.com/hook")
    (written,) = await store.write_tasks("alice", [NewTask(task, "whsec_first")], T0)
    assert written.created and written.task == task
    assert await store.callback_secrets(task.id, T0) == ["whsec_first"]
    update = TaskUpdate(task.id, {}, callback_secret="whsec_second", retire_secrets_at=T0)
    await store.write_tasks("alice", [update], T0)
    assert await store.callback_secrets(task.id, T0) == ["whsec_second"]


async def test_an_idempotency_key_answers_with_the_task_it_made(store: Store) -> None:
    first = make_task(idempotency_key="daily")
    await store.write_tasks("alice", [NewTask(first)], T0)
    (again,) = await store.write_tasks("alice", [NewTask(make_task(idempotency_key="daily"))], T0)
    assert not again.created and again.task is not None and again.task.id == first.id
    assert len(await store.list_tasks("alice")) == 1


async def test_an_id_taken_by_any_owner_is_a_conflict(store: Store) -> None:
    await store.write_tasks("bob", [NewTask(make_task("bob", id="nightly"))], T0)
    with pytest.raises(Conflict, match="nightly"):
        await store.write_tasks("alice", [NewTask(make_task(id="nightly"))], T0)
    assert await store.list_tasks("alice") == []


async def test_an_update_of_a_task_whose_status_changed_meanwhile_is_a_conflict(
    store: Store,
) -> None:
    task = make_task()
    await store.write_tasks("alice", [NewTask(task)], T0)
    paused = {"status": TaskStatus.PAUSED, "next_fire_at": None}
    await store.write_tasks("alice", [TaskUpdate(task.id, paused, TaskStatus.ACTIVE)], T0)
    with pytest.raises(Conflict, match="paused"):
        resume = {"status": TaskStatus.ACTIVE, "next_fire_at": T0}
        await store.write_tasks("alice", [TaskUpdate(task.id, resume, TaskStatus.ACTIVE)], T0)
    assert (await store.get_task("alice", task.id)).status == TaskStatus.PAUSED


async def test_the_task_limit_counts_live_tasks_after_every_write(store: Store) -> None:
    a, b = make_task(), make_task()
    await store.write_tasks("alice", [NewTask(a), NewTask(b)], T0, limits=TWO)
    pause = {"status": TaskStatus.PAUSED, "next_fire_at": None}
    with pytest.raises(LimitReached):  # paused tasks are still held
        await store.write_tasks(
            "alice",
            [TaskUpdate(a.id, pause), TaskUpdate(b.id, pause), NewTask(make_task())],
            T0,
            limits=TWO,
        )
    assert {t.status for t in await store.list_tasks("alice")} == {TaskStatus.ACTIVE}
    swapped = make_task()
    await store.write_tasks("alice", [TaskDeletion(a.id), NewTask(swapped)], T0, limits=TWO)
    assert {t.id for t in await store.list_tasks("alice")} == {b.id, swapped.id}
    await store.write_tasks("bob", [NewTask(make_task("bob"))], T0, limits=TWO)  # per owner


async def test_an_owner_over_a_lowered_limit_may_still_change_and_delete(store: Store) -> None:
    tasks = [make_task() for _ in range(3)]
    await store.write_tasks("alice", [NewTask(t) for t in tasks], T0)
    await store.write_tasks("alice", [TaskUpdate(tasks[0].id, {"name": "x"})], T0, limits=ONE)
    await store.write_tasks("alice", [TaskDeletion(tasks[1].id)], T0, limits=ONE)
    with pytest.raises(LimitReached):
        await store.write_tasks("alice", [NewTask(make_task())], T0, limits=ONE)


async def test_a_dry_run_makes_every_check_and_changes_nothing(store: Store) -> None:
    task = make_task()
    await store.write_tasks("alice", [NewTask(task)], T0)
    new = make_task()
    written = await store.write_tasks(
        "alice",
        [NewTask(new), TaskUpdate(task.id, {"name": "renamed"})],
        T0,
        events=[NewEvent(EventType.TASK_PAUSED, task.id, None, {"note": "x"})],
        dry_run=True,
    )
    assert written[0].created and written[1].task is not None
    assert written[1].task.name == "renamed"
    assert [t.id for t in await store.list_tasks("alice")] == [task.id]
    assert (await store.get_task("alice", task.id)).name == "report"
    assert await store.list_events("alice") == []
    with pytest.raises(LimitReached):
        await store.write_tasks("alice", [NewTask(make_task())], T0, limits=ONE, dry_run=True)


async def test_events_are_appended_with_the_writes(store: Store) -> None:
    task = make_task()
    await store.write_tasks("alice", [NewTask(task)], T0)
    note = NewEvent(EventType.TASK_PAUSED, task.id, None, {"note": "circuit breaker"})
    pause = {"status": TaskStatus.PAUSED, "next_fire_at": None}
    await store.write_tasks("alice", [TaskUpdate(task.id, pause)], T0, events=[note])
    (event,) = await store.list_events("alice")
    assert event.type == EventType.TASK_PAUSED and event.payload == {"note": "circuit breaker"}


async def test_a_deletion_reports_the_runs_that_were_running(store: Store) -> None:
    task = make_task()
    await store.write_tasks("alice", [NewTask(task)], T0)
    (deleted,) = await store.write_tasks("alice", [TaskDeletion(task.id)], T0)
    assert deleted.task is None and deleted.running == () and deleted.was_live
    with pytest.raises(TaskNotFound):
        await store.write_tasks("bob", [TaskDeletion(task.id)], T0)


# --- racing writers ------------------------------------------------------------------------
async def _race_creates(
    stores: list[Store], owner: str, count: int, limit: int | OwnerLimits
) -> int:
    """`count` concurrent single creates spread over `stores`, at `limit` (live tasks, or the
    limits given); how many landed."""
    limits = limit if isinstance(limit, OwnerLimits) else OwnerLimits(max_tasks=limit)
    landed = 0

    async def create(index: int) -> None:
        nonlocal landed
        target = stores[index % len(stores)]
        try:
            await target.write_tasks(owner, [NewTask(make_task(owner))], T0, limits=limits)
        except LimitReached:
            return
        landed += 1

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for index in range(count):
                tg.start_soon(create, index)
    return landed


@pytest.fixture
async def sqlite_pair(tmp_path: Path) -> AsyncIterator[list[Store]]:
    """Two store objects on one SQLite file, as two processes would hold it."""
    stores: list[Store] = [SQLiteStore(tmp_path / "w.db"), SQLiteStore(tmp_path / "w.db")]
    for s in stores:
        await s.open()
    try:
        yield stores
    finally:
        for s in stores:
            await s.close()


async def test_racing_creates_on_one_sqlite_file_never_pass_the_limit(
    sqlite_pair: list[Store],
) -> None:
    landed = await _race_creates(sqlite_pair, "alice", count=60, limit=25)
    assert landed == 25
    assert await count_tasks(sqlite_pair[0], "alice", active_only=True) == 25


async def test_racing_creates_on_one_sqlite_file_never_pass_the_creation_rate(
    sqlite_pair: list[Store],
) -> None:
    landed = await _race_creates(sqlite_pair, "alice", 40, OwnerLimits(tasks_per_minute=7))
    assert landed == 7


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="set WAKECALL_TEST_POSTGRES_URL")
async def test_racing_creates_on_three_postgres_nodes_never_pass_the_limit() -> None:
    from support.postgres import database
    from wakecall.store.postgres import PostgresStore

    assert POSTGRES_URL is not None
    async with database(POSTGRES_URL) as db:
        nodes: list[Store] = [db.store]
        for _ in range(2):
            node = PostgresStore(db.url, schema=db.schema, max_pool=10)
            await node.open()
            nodes.append(node)
        try:
            landed = await _race_creates(nodes, "alice", count=60, limit=5)
            paced = await _race_creates(nodes, "bob", 60, OwnerLimits(wakeups_per_minute=4))
            rated = await _race_creates(nodes, "carol", 60, OwnerLimits(tasks_per_minute=6))
        finally:
            for node in nodes[1:]:
                await node.close()
        assert landed == 5
        assert await db.value("SELECT count(*) FROM tasks WHERE owner = 'alice'") == 5
        assert paced == 60  # these are tasks, not wakeups: only the task rate counts them
        assert rated == 6
        assert await db.value("SELECT count(*) FROM tasks WHERE owner = 'carol'") == 6
