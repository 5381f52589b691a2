"""What only a shared PostgreSQL store has to get right: several nodes at once.

Each test opens several `PostgresStore`s (one pool each, as separate nodes would) on one fresh
schema and races them with `asyncio.gather`. Skipped unless `WAKECALL_TEST_POSTGRES_URL` is set
(`scripts/start-postgres` starts a server and prints it).
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import asyncpg
import pytest

from support import records
from support.postgres import LISTENERS_SQL
from support.records import LEASE, T0, add_task, delete_task, update_task
from wakecall.clock import OffsetClock
from wakecall.errors import NotAWakecallDatabase, StoreError, TaskNotFound
from wakecall.ids import new_id
from wakecall.models import (
    AttemptStatus,
    EventType,
    Overlap,
    RetryPolicy,
    Run,
    RunStatus,
    Task,
    TaskStatus,
    Trigger,
)
from wakecall.store import RESYNC, FirePlan, Hint, NewEvent, NewRun, RunOutcome, clock_of
from wakecall.store.postgres import SCHEMA_VERSION, PostgresStore

URL = os.environ.get("WAKECALL_TEST_POSTGRES_URL")

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not URL, reason="set WAKECALL_TEST_POSTGRES_URL (scripts/start-postgres)"),
]

Nodes = Callable[[int], Awaitable[list[PostgresStore]]]


def make_task(owner: str = "alice", **changes: Any) -> Task:
    """The shared test task with one attempt and no metadata."""
    return records.make_task(owner, **{"retry": RetryPolicy(attempts=1), "metadata": {}, **changes})


def queued(fire: datetime | None = T0, **changes: Any) -> NewRun:
    fields: dict[str, Any] = {
        "id": new_id("run"),
        "scheduled_for": fire,
        "due_at": fire or T0,
        "status": RunStatus.QUEUED,
        "trigger": Trigger.SCHEDULE if fire else Trigger.MANUAL,
    }
    fields.update(changes)
    return NewRun(**fields)


@pytest.fixture
def schema() -> str:
    return f"pgonly_{os.getpid()}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def nodes(schema: str) -> AsyncIterator[Nodes]:
    """`await nodes(n)`: n open stores on one fresh schema, each with its own pool."""
    opened: list[PostgresStore] = []

    async def make(n: int) -> list[PostgresStore]:
        stores = [PostgresStore(URL or "", schema=schema, max_pool=4) for _ in range(n)]
        opened.extend(stores)
        with anyio.fail_after(30):
            await asyncio.gather(*(s.open() for s in stores))
        return stores

    try:
        yield make
    finally:
        with anyio.fail_after(30):
            if opened:
                await opened[0].drop_schema()
            for s in opened:
                await s.close()


async def test_stores_opening_at_once_create_the_schema_once(nodes: Nodes, schema: str) -> None:
    stores = await nodes(6)
    with anyio.fail_after(10):
        versions = await asyncio.gather(*(s.schema_version() for s in stores))
        assert versions == [SCHEMA_VERSION] * 6
        # Opening again (even through a new store) changes nothing and keeps data.
        task = make_task()
        await add_task(stores[0], task)
        (late,) = await nodes(1)
        assert (await late.get_task(None, task.id)).id == task.id
        conn = await asyncpg.connect(URL)
        try:
            meta = await conn.fetch(f'SELECT key, value FROM "{schema}".meta ORDER BY key')
        finally:
            await conn.close()
    assert [tuple(r) for r in meta] == [
        ("application", "wakecall"),
        ("event_cursor_floor", "0"),
        ("schema_version", str(SCHEMA_VERSION)),
    ]


async def test_an_older_schema_is_upgraded_once_when_stores_open_at_once(
    nodes: Nodes, schema: str
) -> None:
    (first,) = await nodes(1)
    task = make_task(callback_url="https://app.example/cb")
    with anyio.fail_after(30):
        await add_task(first, task)
        await first.close()
        # Back to version 1: the tables of version 2 (callbacks), the columns and table of
        # version 3 (chains, triggers), the table of version 4 (creation rates), those of
        # version 5 (readers, subscriptions), the per-owner cursors of version 6, the index of
        # version 7 (finished tasks), the backfill keys and the runs' own overlap of version 8,
        # the columns of version 9 (pause after failures), the subscription endings of version
        # 10, the trace context columns of version 11, the flow control of version 12 and the
        # index of live tasks of version 13 did not exist then.
        conn = await asyncpg.connect(URL)
        try:
            await conn.execute(
                f'DROP INDEX "{schema}".runs_fire, "{schema}".runs_backfill; '
                f'ALTER TABLE "{schema}".runs DROP COLUMN overlap, '
                "ADD UNIQUE (task_id, scheduled_for); "
                f'DROP INDEX "{schema}".tasks_finished, "{schema}".tasks_live; '
                f'DROP TABLE "{schema}".event_owners, "{schema}".flow_starts; '
                f'ALTER TABLE "{schema}".tasks DROP COLUMN concurrency, DROP COLUMN rate_limit; '
                f"DELETE FROM \"{schema}\".meta WHERE key = 'event_cursor_floor'; "
                f'ALTER TABLE "{schema}".events DROP CONSTRAINT events_pkey; '
                f'CREATE SEQUENCE "{schema}".events_cursor_seq OWNED BY "{schema}".events.cursor; '
                f'ALTER TABLE "{schema}".events ALTER COLUMN cursor '
                f"SET DEFAULT nextval('\"{schema}\".events_cursor_seq'), ADD PRIMARY KEY (cursor); "
                f'CREATE INDEX events_owner ON "{schema}".events (owner, cursor)'
            )
            await conn.execute(
                f'DROP TABLE "{schema}".deliveries, "{schema}".callback_secrets, '
                f'"{schema}".trigger_events, "{schema}".read_positions, '
                f'"{schema}".event_horizons, "{schema}".event_subscriptions, '
                f'"{schema}".tool_tasks, "{schema}".task_creations; '
                f'ALTER TABLE "{schema}".tasks DROP COLUMN depends_on, DROP COLUMN trigger, '
                "DROP COLUMN condition, DROP COLUMN pause_after_failures, "
                "DROP COLUMN failure_streak, DROP COLUMN traceparent, DROP COLUMN tracestate; "
                f'ALTER TABLE "{schema}".runs DROP COLUMN input, DROP COLUMN traceparent, '
                "DROP COLUMN tracestate; "
                f"UPDATE \"{schema}\".meta SET value = '1' WHERE key = 'schema_version'"
            )
        finally:
            await conn.close()
        stores = await nodes(4)
        versions = await asyncio.gather(*(s.schema_version() for s in stores))
        assert versions == [SCHEMA_VERSION] * 4
        assert (await stores[1].get_task(None, task.id)).callback_url == task.callback_url
        assert await stores[2].list_deliveries(None) == []


async def test_nodes_racing_for_due_tasks_never_claim_one_twice(nodes: Nodes) -> None:
    stores = await nodes(4)
    tasks = [make_task(next_fire_at=T0 - timedelta(seconds=i % 7)) for i in range(300)]
    with anyio.fail_after(30):
        for t in tasks:
            await add_task(stores[0], t)

        async def claim_all(i: int) -> list[str]:
            got: list[str] = []
            for _ in range(200):
                due = await stores[i].claim_due_tasks(f"n{i}", T0, 5 + i, LEASE)
                if not due:
                    break
                got.extend(d.task.id for d in due)
            return got

        claims = await asyncio.gather(*(claim_all(i) for i in range(len(stores))))
        everything = [task_id for got in claims for task_id in got]
        assert len(everything) == len(set(everything)) == len(tasks)
        for i, got in enumerate(claims):
            for task_id in got[:20]:
                assert (await stores[0].get_task(None, task_id)).claimed_by == f"n{i}"


async def test_nodes_racing_for_runs_never_claim_one_twice_nor_overlap_a_task(
    nodes: Nodes,
) -> None:
    stores = await nodes(4)
    shared = [make_task(overlap=Overlap.ALLOW) for _ in range(20)]
    exclusive = [make_task(overlap=Overlap.QUEUE, max_queued=5) for _ in range(40)]
    with anyio.fail_after(30):
        # Siblings are neighbours in claim order, so small claims split them across nodes.
        order = [t for i, x in enumerate(exclusive) for t in (x, *shared[i : i + 1])]
        for t in order:
            await add_task(stores[0], t)
            for _ in range(3):
                await stores[0].create_run(None, t.id, queued(None, due_at=T0), T0)

        async def claim_many(i: int) -> list[Run]:
            got: list[Run] = []
            for k in range(40):
                got.extend(await stores[i].claim_runs(f"n{i}", T0, 1 + (i + k) % 3, LEASE))
            return got

        claims = await asyncio.gather(*(claim_many(i) for i in range(len(stores))))
        # Whatever the race left (claims only look a few runs ahead), one sweep takes.
        claims.append(await stores[0].claim_runs("sweeper", T0, 1000, LEASE))
    everything = [run for got in claims for run in got]
    ids = [run.id for run in everything]
    assert len(ids) == len(set(ids))
    per_task = Counter(run.task_id for run in everything)
    # Every run of a task that allows overlap; exactly one run of each that does not.
    assert {t.id: per_task[t.id] for t in shared} == {t.id: 3 for t in shared}
    assert {t.id: per_task[t.id] for t in exclusive} == {t.id: 1 for t in exclusive}


async def test_record_fires_from_two_nodes_for_one_slot_yields_one_run(nodes: Nodes) -> None:
    n1, n2 = await nodes(2)
    tasks = [make_task() for _ in range(40)]
    with anyio.fail_after(30):
        for t in tasks:
            await add_task(n1, t)
        # Each node holds some claims; each records the T0 fire of every task.
        due1, due2 = await asyncio.gather(
            n1.claim_due_tasks("n1", T0, 100, LEASE), n2.claim_due_tasks("n2", T0, 100, LEASE)
        )

        def plans(fire: datetime, nxt: datetime | None) -> list[FirePlan]:
            return [FirePlan(t.id, [queued(fire)], nxt, fire) for t in tasks]

        r1, r2 = await asyncio.gather(
            n1.record_fires("n1", T0, plans(T0, T0 + timedelta(minutes=1))),
            n2.record_fires("n2", T0, plans(T0, T0 + timedelta(minutes=1))),
        )
        assert sorted(r1.lost_task_ids) == sorted(d.task.id for d in due2)
        assert sorted(r2.lost_task_ids) == sorted(d.task.id for d in due1)
        for t in tasks:
            runs = await n1.list_runs(None, task_id=t.id)
            assert [r.scheduled_for for r in runs] == [T0]
            assert (await n1.get_task(None, t.id)).run_count == 1

        # A stale claimant and the node that took the task over, at once: one run.
        later = T0 + timedelta(minutes=1)
        await n1.claim_due_tasks("n1", later, 100, LEASE)
        await n2.claim_due_tasks("n2", later + LEASE + timedelta(seconds=1), 100, LEASE)
        r1, r2 = await asyncio.gather(
            n1.record_fires("n1", later, plans(later, None)),
            n2.record_fires("n2", later, plans(later, None)),
        )
        assert sorted(r1.lost_task_ids) == sorted(t.id for t in tasks) and r1.runs == []
        assert len(r2.runs) == len(tasks) and r2.lost_task_ids == []


async def test_one_fire_inserted_by_many_nodes_at_once_is_stored_once(nodes: Nodes) -> None:
    stores = await nodes(4)
    task = make_task(overlap=Overlap.ALLOW)
    with anyio.fail_after(30):
        await add_task(stores[0], task)
        results = await asyncio.gather(
            *(s.create_run(None, task.id, queued(T0), T0) for s in stores for _ in range(3)),
            return_exceptions=True,
        )
        created = [r for r in results if isinstance(r, Run)]
        refused = [r for r in results if isinstance(r, StoreError)]
        assert len(created) == 1 and len(refused) == len(results) - 1
        assert [r.id for r in await stores[0].list_runs(None, task_id=task.id)] == [created[0].id]


async def test_a_reader_following_the_log_never_skips_an_event(nodes: Nodes) -> None:
    *writers, reader = await nodes(5)
    task = make_task(overlap=Overlap.ALLOW)
    per_writer = 60
    with anyio.fail_after(60):
        await add_task(reader, task)
        for _ in range(per_writer * len(writers)):
            await reader.create_run(None, task.id, queued(None), T0)
        for i, w in enumerate(writers):
            runs = await w.claim_runs(f"n{i}", T0, per_writer, LEASE)
            assert len(runs) == per_writer
            await w.start_attempts(f"n{i}", T0, [r.id for r in runs])

        done = anyio.Event()
        seen: list[int] = []

        async def follow() -> None:
            cursor = 0
            while True:
                finished = done.is_set()
                for event in await reader.list_events("alice", after=cursor, limit=1000):
                    seen.append(event.cursor)
                    cursor = event.cursor
                if finished:
                    return
                await asyncio.sleep(0)

        async def write(i: int) -> None:
            runs = await writers[i].list_runs(
                None, task_id=task.id, status=RunStatus.RUNNING, limit=1000
            )
            mine = [r.id for r in runs if r.claimed_by == f"n{i}"]
            for k in range(0, len(mine), 3):
                outcomes = [RunOutcome(rid, AttemptStatus.SUCCESS, T0) for rid in mine[k : k + 3]]
                await writers[i].finish_runs(f"n{i}", outcomes)

        async def write_all() -> None:
            await asyncio.gather(*(write(i) for i in range(len(writers))))
            done.set()

        await asyncio.gather(follow(), write_all())
        everything = [e.cursor for e in await reader.list_events("alice", limit=10_000)]
    assert len(everything) == per_writer * len(writers)
    assert seen == everything


async def test_an_expired_task_is_announced_once_when_nodes_finish_its_last_runs_together(
    nodes: Nodes,
) -> None:
    n1, n2 = await nodes(2)
    tasks = [make_task(overlap=Overlap.ALLOW) for _ in range(15)]
    with anyio.fail_after(30):
        held: dict[str, list[str]] = {"n1": [], "n2": []}
        for t in tasks:
            await add_task(n1, t)
            for node, store in (("n1", n1), ("n2", n2)):
                run = await store.create_run(None, t.id, queued(None), T0)
                assert [r.id for r in await store.claim_runs(node, T0, 1, LEASE)] == [run.id]
                await store.start_attempts(node, T0, [run.id])
                held[node].append(run.id)
            await update_task(
                n1, None, t.id, {"status": TaskStatus.EXPIRED, "end_reason": "max_runs_reached"}, T0
            )
        end = T0 + timedelta(seconds=5)
        for k in range(len(tasks)):
            await asyncio.gather(
                n1.finish_runs("n1", [RunOutcome(held["n1"][k], AttemptStatus.SUCCESS, end)]),
                n2.finish_runs("n2", [RunOutcome(held["n2"][k], AttemptStatus.SUCCESS, end)]),
            )
        events = await n1.list_events("alice", limit=1000)
    expired = Counter(e.task_id for e in events if e.type == EventType.TASK_EXPIRED)
    assert expired == {t.id: 1 for t in tasks}


async def test_writers_touching_the_same_runs_at_once_do_not_deadlock(nodes: Nodes) -> None:
    heartbeat, canceller, finisher = await nodes(3)
    task = make_task(overlap=Overlap.ALLOW)
    rng = random.Random(7)
    with anyio.fail_after(60):
        await add_task(finisher, task)
        for _ in range(150):
            await finisher.create_run(None, task.id, queued(None), T0)
        ids = [r.id for r in await finisher.claim_runs("n1", T0, 1000, LEASE)]
        await finisher.start_attempts("n1", T0, ids)

        def shuffled() -> list[str]:
            return rng.sample(ids, len(ids))

        async def beat() -> None:
            for k in range(15):
                await heartbeat.extend_leases("n1", shuffled(), T0 + LEASE * (k + 2))

        async def cancel() -> None:
            for _ in range(15):
                await canceller.request_cancel(None, shuffled())

        async def finish() -> None:
            order = shuffled()
            for k in range(0, len(order), 10):
                outcomes = [RunOutcome(i, AttemptStatus.SUCCESS, T0) for i in order[k : k + 10]]
                await finisher.finish_runs("n1", outcomes)

        await asyncio.gather(beat(), cancel(), finish())
        runs = await finisher.list_runs(None, task_id=task.id, limit=1000)
    assert Counter(r.status for r in runs) == {RunStatus.SUCCESS: len(ids)}


async def test_what_jsonb_refuses_in_run_results_is_replaced_not_refused(nodes: Nodes) -> None:
    (store,) = await nodes(1)
    task = make_task()
    with anyio.fail_after(10):
        await add_task(store, task)
        run = await store.create_run(None, task.id, queued(None), T0)
        await store.claim_runs("n1", T0, 1, LEASE)
        await store.start_attempts("n1", T0, [run.id])
        _, (event,) = await store.finish_runs(
            "n1",
            [
                RunOutcome(
                    run.id,
                    AttemptStatus.FAILURE,
                    T0,
                    output={"log": "a\x00b", "ratio": float("nan")},
                    error_message="bad\x00byte",
                )
            ],
        )
        stored = await store.get_run(None, run.id)
    assert stored.output == {"log": "a\ufffdb", "ratio": None}
    assert stored.error_message == "bad\ufffdbyte"
    assert event.payload["run"]["output"] == {"log": "a\ufffdb", "ratio": None}


async def test_a_schema_of_another_application_is_refused(schema: str) -> None:
    with anyio.fail_after(10):
        conn = await asyncpg.connect(URL)
        try:
            await conn.execute(f'CREATE SCHEMA "{schema}"; CREATE TABLE "{schema}".users (id int)')
            store = PostgresStore(URL or "", schema=schema)
            with pytest.raises(NotAWakecallDatabase, match="another application"):
                await store.open()
            await store.close()
        finally:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()


async def test_a_newer_schema_is_refused(nodes: Nodes, schema: str) -> None:
    await nodes(1)
    with anyio.fail_after(10):
        conn = await asyncpg.connect(URL)
        try:
            await conn.execute(
                f"UPDATE \"{schema}\".meta SET value = '999' WHERE key = 'schema_version'"
            )
        finally:
            await conn.close()
        newer = PostgresStore(URL or "", schema=schema)
        with pytest.raises(StoreError, match="newer than this wakecall"):
            await newer.open()
        await newer.close()


@pytest.mark.parametrize(
    ("password", "port"), [("right", 1), ("wrong-secret", None)], ids=["no server", "bad password"]
)
async def test_a_server_that_cannot_be_used_is_a_store_error_without_the_password(
    password: str, port: int | None
) -> None:
    parts = urlsplit(URL or "")
    secret = parts.password if password == "right" else password
    assert secret
    netloc = f"{parts.username}:{secret}@{parts.hostname}:{port or parts.port}"
    store = PostgresStore(urlunsplit(parts._replace(netloc=netloc)), schema="unused")
    with anyio.fail_after(15), pytest.raises(StoreError) as caught:
        await store.open()
    assert "cannot connect to PostgreSQL" in str(caught.value)
    assert secret not in str(caught.value)
    await store.close()


async def test_a_closed_store_says_so(nodes: Nodes) -> None:
    (store,) = await nodes(1)
    with anyio.fail_after(10):
        await store.close()
        await store.close()  # idempotent
        with pytest.raises(StoreError, match="not open"):
            await store.get_task(None, "tsk_x")
        await store.open()
        with pytest.raises(TaskNotFound):
            await store.get_task(None, "tsk_x")


# --- hints between nodes ---------------------------------------------------------------------
class Hints:
    """Collects the hints a store's `watch` hands over."""

    def __init__(self) -> None:
        self.got: list[Hint] = []
        self._changed = anyio.Event()

    def __call__(self, hint: Hint) -> None:
        self.got.append(hint)
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, predicate: Callable[[Hint], bool]) -> Hint:
        while True:
            for hint in self.got:
                if predicate(hint):
                    return hint
            await self._changed.wait()


async def _listeners(store: PostgresStore) -> int:
    """How many connections listen on the store's channel."""
    count: int = await store._call(lambda c: c.fetchval(LISTENERS_SQL, store.channel))
    return count


async def _listening(store: PostgresStore, count: int = 1) -> None:
    """Until `count` connections listen (hints sent before that are not heard)."""
    while await _listeners(store) < count:  # noqa: ASYNC110 - the server is asked
        await anyio.sleep(0.02)


async def test_a_change_on_one_node_is_hinted_to_the_others_and_not_to_itself(
    nodes: Nodes,
) -> None:
    a, b = await nodes(2)
    heard_a, heard_b = Hints(), Hints()
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(a.watch, heard_a)
            tg.start_soon(b.watch, heard_b)
            await _listening(a, 2)

            task, _ = await add_task(a, make_task("alice"))
            assert await heard_b.wait_for(lambda h: h.due)
            # Events carry their owners, so only those owners' readers look again.
            await a.claim_due_tasks("n1", T0, 10, LEASE)
            await a.record_fires(
                "n1",
                T0,
                [FirePlan(task.id, [queued(T0, status=RunStatus.MISSED)], T0 + LEASE, T0)],
            )
            hint = await heard_b.wait_for(lambda h: bool(h.owners))
            assert hint.owners == {"alice"} and not hint.all_owners
            tg.cancel_scope.cancel()
    assert heard_a.got == []  # a store is not told of its own changes


@pytest.mark.parametrize("as_started", [True, False], ids=["as started", "read again"])
async def test_a_run_that_frees_a_concurrency_key_tells_the_other_nodes_to_look_again(
    nodes: Nodes, as_started: bool
) -> None:
    """Runs another node holds back for the key may start now: without the hint they would
    wait for that node's next poll."""
    a, b = await nodes(2)
    task, _ = await add_task(a, make_task("alice", concurrency={"key": "k", "limit": 1}))
    plain, _ = await add_task(a, make_task("alice"))
    marker, _ = await add_task(a, make_task("marker"))
    heard = Hints()

    async def all_heard() -> None:
        """Until the hints of what `a` wrote so far are in (they come in commit order)."""
        await a.append_events(T0, [NewEvent(EventType.RUN_STALE, marker.id, None, {})])
        await heard.wait_for(lambda h: "marker" in h.owners)

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(b.watch, heard)
            await _listening(a)
            for each in (plain, task):  # a run without a key first: no hint to look again
                run = await a.create_run(None, each.id, queued(None), T0)
                if as_started:  # the finish then takes the one-statement way
                    assert [r.id for r, _ in await a.start_due_runs("n1", T0, 1, LEASE)] == [run.id]
                else:
                    assert [r.id for r in await a.claim_runs("n1", T0, 1, LEASE)] == [run.id]
                    await a.start_attempts("n1", T0, [run.id])
                await all_heard()
                heard.got.clear()
                end = T0 + timedelta(seconds=1)
                await a.finish_runs("n1", [RunOutcome(run.id, AttemptStatus.SUCCESS, end)])
                hint = await heard.wait_for(lambda h: "alice" in h.owners)  # its completion
                assert hint.due == (each is task)
            tg.cancel_scope.cancel()


async def test_a_lost_listening_connection_comes_back_and_says_hints_may_be_lost(
    nodes: Nodes,
) -> None:
    (a, b) = await nodes(2)
    a.listen_check = 0.2
    heard = Hints()
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(a.watch, heard)
            await _listening(a)
            killed = await b._call(
                lambda c: c.fetchval(
                    LISTENERS_SQL.replace("count(*)", "count(pg_terminate_backend(pid))"),
                    a.channel,
                )
            )
            assert killed == 1
            assert await heard.wait_for(lambda h: h == RESYNC)
            # Listening again: a change made after the resync is heard.
            await _listening(a)
            await add_task(b, make_task("bob"))
            await heard.wait_for(lambda h: h.due and h != RESYNC)
            tg.cancel_scope.cancel()


async def test_a_server_on_postgresql_reads_time_from_the_database_server(nodes: Nodes) -> None:
    (store,) = await nodes(1)
    clock = clock_of(store)
    assert isinstance(clock, OffsetClock)
    server_now = await store._call(lambda c: c.fetchval("SELECT clock_timestamp()"))
    assert abs(clock.now() - server_now) < timedelta(seconds=0.5)
    # A machine whose clock is off by an hour still schedules by the server's clock.
    store.clock_offset += timedelta(hours=1)
    assert timedelta(minutes=59) < clock.now() - datetime.now(UTC) < timedelta(minutes=61)


async def _start_one_run_each(store: PostgresStore, tasks: list[Task]) -> dict[str, Run]:
    """Each task created with one queued run, all started by `store` for node n1."""
    for t in tasks:
        await add_task(store, t)
        await store.create_run(None, t.id, queued(None), T0)
    started = await store.start_due_runs("n1", T0, 100, LEASE)
    assert len(started) == len(tasks)
    return {task.id: run for run, task in started}


async def test_runs_a_store_started_are_finished_in_one_statement_from_what_it_read(
    nodes: Nodes, monkeypatch: pytest.MonkeyPatch
) -> None:
    (store,) = await nodes(1)
    tasks = [make_task(overlap=Overlap.ALLOW, name=f"t{i}", metadata={"i": i}) for i in range(3)]

    async def no_reading(*_: Any) -> Any:
        raise AssertionError("the rows were read again")

    with anyio.fail_after(10):
        runs = await _start_one_run_each(store, tasks)
        monkeypatch.setattr(store, "_finish_runs_read", no_reading)
        end = T0 + timedelta(seconds=2)
        outcomes = [
            RunOutcome(runs[tasks[0].id].id, AttemptStatus.SUCCESS, end, output={"n": 1}),
            RunOutcome(runs[tasks[1].id].id, AttemptStatus.FAILURE, end, error_message="no"),
            RunOutcome(runs[tasks[2].id].id, AttemptStatus.TIMEOUT, end, duration_ms=7),
        ]
        written, events = await store.finish_runs("n1", outcomes)
        stored = {r.id: r for r in await store.list_runs(None, limit=10)}
        attempts = [await store.list_attempts(None, o.run_id) for o in outcomes]
        logged = await store.list_events("alice")
    assert [r.status for r in written] == [RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.TIMEOUT]
    assert [stored[r.id] for r in written] == written
    assert [r.duration_ms for r in written] == [2000, 2000, 7]
    assert [[(a.number, a.status) for a in one] for one in attempts] == [
        [(1, AttemptStatus.SUCCESS)],
        [(1, AttemptStatus.FAILURE)],
        [(1, AttemptStatus.TIMEOUT)],
    ]
    assert [e.type for e in events] == [
        EventType.RUN_COMPLETED,
        EventType.RUN_FAILED,
        EventType.RUN_FAILED,
    ]
    assert [e.run_id for e in events] == [o.run_id for o in outcomes]
    assert [e.payload["task"]["metadata"] for e in events] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert events[0].payload["run"]["output"] == {"n": 1}
    assert [e.cursor for e in logged] == [e.cursor for e in events]


async def test_runs_that_changed_after_their_start_are_finished_as_they_are_now(
    nodes: Nodes,
) -> None:
    """A lease renewed, the task edited, a cancellation asked, the run taken over by another
    node, the task deleted: the finish reads the rows again and writes from them."""
    store, other = await nodes(2)
    tasks = [make_task(overlap=Overlap.ALLOW, name=f"t{i}") for i in range(6)]
    later = T0 + LEASE * 3
    with anyio.fail_after(10):
        runs = await _start_one_run_each(store, tasks)
        plain, renewed, edited, cancelled, taken, deleted = (runs[t.id] for t in tasks)
        # Renewed past `later`; all others lapse, and only `taken` is reaped by the other node.
        keep = [r.id for r in (plain, renewed, edited, cancelled, deleted)]
        assert (await store.extend_leases("n1", keep, later + LEASE))[0] == set(keep)
        assert [r.id for r in await other.claim_expired_runs("n2", later, 10, LEASE)] == [taken.id]
        await update_task(other, None, edited.task_id, {"metadata": {"team": "edited"}}, later)
        await other.request_cancel(None, [cancelled.id])
        await delete_task(other, None, deleted.task_id)
        outcomes = [
            RunOutcome(r.id, AttemptStatus.SUCCESS, later)
            for r in (plain, renewed, edited, cancelled, taken, deleted)
        ]
        written, events = await store.finish_runs("n1", outcomes)
        stored_taken = await store.get_run(None, taken.id)
    # Taken over: not ours any more; deleted: gone. The others are written, with an event each.
    assert [r.id for r in written] == [plain.id, renewed.id, edited.id, cancelled.id]
    assert all(r.status == RunStatus.SUCCESS for r in written)
    assert [e.run_id for e in events] == [r.id for r in written]
    assert events[2].payload["task"]["metadata"] == {"team": "edited"}
    assert written[3].cancel_requested
    assert (stored_taken.status, stored_taken.claimed_by) == (RunStatus.RUNNING, "n2")


async def test_a_run_started_and_finished_by_a_store_queues_the_tasks_that_depend_on_it(
    nodes: Nodes,
) -> None:
    (store,) = await nodes(1)
    upstream = make_task(overlap=Overlap.ALLOW, name="extract")
    downstream = make_task(name="load", depends_on=upstream.id, next_fire_at=None)
    with anyio.fail_after(10):
        await add_task(store, downstream)
        (run,) = (await _start_one_run_each(store, [upstream])).values()
        written, events = await store.finish_runs(
            "n1", [RunOutcome(run.id, AttemptStatus.SUCCESS, T0, output={"rows": 3})]
        )
        (queued_run,) = await store.list_runs(None, task_id=downstream.id)
    assert [r.status for r in written] == [RunStatus.SUCCESS]
    assert [e.type for e in events] == [EventType.RUN_COMPLETED]
    assert (queued_run.status, queued_run.trigger) == (RunStatus.QUEUED, Trigger.DEPENDENCY)
    assert queued_run.input["run"]["id"] == run.id
    assert queued_run.input["run"]["output"] == {"rows": 3}


async def test_nodes_finishing_failed_runs_of_one_task_at_once_count_each_and_pause_once(
    nodes: Nodes,
) -> None:
    """Each finishing transaction reads the task's failure streak locked, so two nodes ending
    the last two failed runs of a task together leave both in the streak and pause it once."""
    n1, n2 = await nodes(2)
    tasks = [make_task(overlap=Overlap.ALLOW, pause_after_failures=2) for _ in range(15)]
    with anyio.fail_after(30):
        held: dict[str, list[str]] = {"n1": [], "n2": []}
        for t in tasks:
            await add_task(n1, t)
            for node, store in (("n1", n1), ("n2", n2)):
                run = await store.create_run(None, t.id, queued(None), T0)
                assert [r.id for r in await store.claim_runs(node, T0, 1, LEASE)] == [run.id]
                await store.start_attempts(node, T0, [run.id])
                held[node].append(run.id)
        end = T0 + timedelta(seconds=5)
        for k in range(len(tasks)):
            await asyncio.gather(
                *(
                    store.finish_runs(
                        node,
                        [
                            RunOutcome(
                                held[node][k], AttemptStatus.FAILURE, end, error_message="down"
                            )
                        ],
                    )
                    for node, store in (("n1", n1), ("n2", n2))
                )
            )
        events = await n1.list_events("alice", limit=1000)
        stored = [await n2.get_task(None, t.id) for t in tasks]
    paused = Counter(e.task_id for e in events if e.type == EventType.TASK_PAUSED)
    assert paused == {t.id: 1 for t in tasks}
    for k, task in enumerate(stored):
        assert task.status == TaskStatus.PAUSED and task.next_fire_at is None
        assert sorted(task.failure_streak) == sorted([held["n1"][k], held["n2"][k]])
        assert all(run_id in (task.pause_note or "") for run_id in task.failure_streak)
