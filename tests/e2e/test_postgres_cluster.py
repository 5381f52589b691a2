"""Several `wakecall serve` nodes on one PostgreSQL database, as real processes: every slot
runs once, every event is logged once, every callback is delivered once, a node killed with
its runs in flight is taken over, and a database restart is survived.

The test process creates tasks straight in the store (as the `wakecall` command line would)
and inspects the database; only the nodes run anything.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from support.loopback import Receiver, serve_receiver
from support.postgres import (
    POSTGRES_URL,
    Database,
    database,
    poll_until,
)
from wakecall.delivery.signing import new_secret
from wakecall.engine import Engine, EngineConfig
from wakecall.models import CatchUp, NoopAction, Task, TaskSpec

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(not POSTGRES_URL, reason="needs WAKECALL_TEST_POSTGRES_URL"),
]

#: Settings of every node: callbacks may go to the loopback receiver; a lost hint costs at
#: most a second.
NODE_FLAGS = ("--allow-outbound", "loopback", "--poll-interval", "1s", "--pg-pool", "6")


@asynccontextmanager
async def nodes(
    wakecall: Any, db: Database, count: int, *flags: str, new_session: bool = False
) -> AsyncIterator[list[Any]]:
    """`count` nodes named node-0, node-1, … serving HTTP on loopback (owner "local")."""
    async with AsyncExitStack() as stack:
        servers = []
        for i in range(count):
            args = ("--pg-schema", db.schema, "--node", f"node-{i}", *NODE_FLAGS, *flags)
            servers.append(
                await stack.enter_async_context(
                    wakecall.http_server(*args, tokens={}, store=db.url, new_session=new_session)
                )
            )
        yield servers


class Setup:
    """Creates tasks in the store the nodes share, each signing its callbacks with one
    secret the receiver knows."""

    def __init__(self, db: Database, receiver: Receiver) -> None:
        self.db = db
        self.engine = Engine(db.store, config=EngineConfig(node_id="setup"))
        self.secret = new_secret()
        receiver.secrets.append(self.secret)

    async def create(self, owner: str, spec: TaskSpec) -> Task:
        task, _ = await self.engine.tasks.create(owner, spec)
        if spec.callback_url:
            await self.db.store.add_callback_secret(task.id, self.secret, datetime.now(UTC), None)
        return task

    async def create_many(self, specs: list[tuple[str, TaskSpec]], workers: int = 8) -> list[Task]:
        created: list[Task] = []
        pending = list(specs)

        async def worker() -> None:
            while pending:
                owner, spec = pending.pop()
                created.append(await self.create(owner, spec))

        async with anyio.create_task_group() as tg:
            for _ in range(workers):
                tg.start_soon(worker)
        return created


def once_at(at: datetime, name: str, **fields: Any) -> TaskSpec:
    return TaskSpec(
        name=name,
        schedule={"type": "once", "at": at.isoformat()},
        action=NoopAction(),
        **fields,
    )


async def settled(db: Database) -> bool:
    """No run waits or runs, and no callback waits to be sent."""
    busy = await db.value(
        "SELECT (SELECT count(*) FROM runs WHERE status IN ('queued', 'running'))"
        " + (SELECT count(*) FROM deliveries WHERE status = 'pending')"
    )
    return bool(busy == 0)


async def assert_every_event_once(db: Database) -> None:
    """Each finished run has exactly one run event in the log (a run skipped by the overlap
    policy has none, by design); no event is there twice."""
    doubled = await db.rows(
        "SELECT run_id, count(*) FROM events WHERE run_id IS NOT NULL "
        "GROUP BY run_id HAVING count(*) <> 1"
    )
    assert doubled == []
    silent = await db.value(
        "SELECT count(*) FROM runs r WHERE r.status NOT IN ('queued', 'running', 'skipped') "
        "AND NOT EXISTS (SELECT 1 FROM events e WHERE e.run_id = r.id)"
    )
    assert silent == 0


async def assert_every_callback_once(db: Database, receiver: Receiver) -> None:
    """Every callback event made one delivery, delivered, and the receiver took each once."""
    deliveries = await db.rows("SELECT id, status FROM deliveries")
    callback_events = await db.value(
        "SELECT count(*) FROM events e JOIN tasks t ON t.id = e.task_id "
        "WHERE t.callback_url IS NOT NULL"
    )
    assert len(deliveries) == callback_events > 0
    assert {d["status"] for d in deliveries} == {"delivered"}
    received = Counter(a["webhook-id"] for a in receiver.attempts)
    assert set(received) == {d["id"] for d in deliveries}
    assert max(received.values()) == 1, [k for k, n in received.items() if n > 1][:5]
    assert len(receiver.bodies) == len(deliveries)  # each verified with the task's secret


async def assert_slots_contiguous(db: Database, task_ids: list[str]) -> dict[str, int]:
    """Every second from a periodic task's first slot to its last has exactly one run."""
    counts = {}
    for task_id in task_ids:
        slots = [
            r["scheduled_for"]
            for r in await db.rows(
                "SELECT scheduled_for FROM runs WHERE task_id = $1 ORDER BY scheduled_for",
                task_id,
            )
        ]
        assert len(slots) == len(set(slots))
        gaps = [(b - a) for a, b in itertools.pairwise(slots)]
        assert set(gaps) <= {timedelta(seconds=1)}, (task_id, slots)
        counts[task_id] = len(slots)
    return counts


async def test_postgres_three_nodes_run_each_slot_once_and_deliver_each_callback_once(
    wakecall: Any,
) -> None:
    assert POSTGRES_URL
    async with (
        database(POSTGRES_URL) as db,
        serve_receiver() as receiver,
        nodes(wakecall, db, 3, "--concurrency", "32") as servers,
    ):
        setup = Setup(db, receiver)
        hook = receiver.url("/hook")
        # A live session on node-0 for the owner "local": it must be pushed the events of
        # runs that node-1 and node-2 execute too.
        recorder = wakecall.recorder()
        transport = wakecall.http_transport(servers[0].url, None, recorder)
        async with wakecall.client(transport, mode="legacy", recorder=recorder) as client:
            await wakecall.call(client, "list_tasks", {})  # the session is registered
            periodic_specs = [
                TaskSpec(
                    name=f"every-second-{i}",
                    schedule=schedule,
                    action=NoopAction(),
                    catchup=CatchUp.ALL,
                    callback_url=hook,
                )
                for i, schedule in enumerate(["* * * * * *", "*/1 * * * * *", "@every 1s"])
            ]
            periodic = [await setup.create("local", spec) for spec in periodic_specs]
            # 2,000 one-shots due at one instant, for three owners (creating them takes a
            # few seconds on a loaded machine).
            due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=25)
            owners = ["local"] * 300 + ["alice"] * 1200 + ["bob"] * 500
            oneshots = await setup.create_many(
                [
                    (owner, once_at(due, f"burst-{i}", callback_url=hook))
                    for i, owner in enumerate(owners)
                ]
            )
            assert datetime.now(UTC) < due, "creating the tasks took too long for the test"

            with anyio.fail_after(90):
                await poll_until(lambda: _past(due + timedelta(seconds=4)))
                for task in periodic:
                    await setup.engine.tasks.pause("local", task.id)
                await poll_until(lambda: settled(db))
                await receiver.wait_for(lambda: len(receiver.bodies) >= len(receiver.attempts))

            # Every one-shot ran exactly once, successfully.
            per_task = dict(
                await db.rows(
                    "SELECT task_id, count(*) FROM runs WHERE task_id = ANY($1::text[]) "
                    "AND status = 'success' GROUP BY task_id",
                    [t.id for t in oneshots],
                )
            )
            assert len(per_task) == len(oneshots) and set(per_task.values()) == {1}
            # Every second of the periodic tasks, from first to last, ran exactly once.
            counts = await assert_slots_contiguous(db, [t.id for t in periodic])
            assert min(counts.values()) >= 8
            await assert_every_event_once(db)
            await assert_every_callback_once(db, receiver)
            # The work was shared.
            by_node = dict(await db.rows("SELECT node, count(*) FROM attempts GROUP BY node"))
            assert set(by_node) == {"node-0", "node-1", "node-2"}, by_node

            # The session on node-0 was pushed each of its owner's events once, including
            # those of runs the other nodes executed.
            local_events = {
                r["cursor"]: r["run_id"]
                for r in await db.rows("SELECT cursor, run_id FROM events WHERE owner = 'local'")
            }
            with anyio.fail_after(30):
                await recorder.wait_until(
                    lambda: {d.get("cursor") for d in _event_logs(recorder)} >= set(local_events)
                )
            pushed = Counter(d["cursor"] for d in _event_logs(recorder))
            assert set(pushed) == set(local_events) and max(pushed.values()) == 1
            remote = await db.value(
                "SELECT count(*) FROM attempts a JOIN runs r ON r.id = a.run_id "
                "WHERE r.owner = 'local' AND a.node <> 'node-0'"
            )
            assert remote > 0


def _event_logs(recorder: Any) -> list[dict[str, Any]]:
    return [
        log.data
        for log in recorder.logs
        if isinstance(log.data, dict) and str(log.data.get("event", "")).startswith("task.")
    ]


async def _past(instant: datetime) -> bool:
    return datetime.now(UTC) >= instant
