"""Several `wakecall serve` nodes on one PostgreSQL database, as real processes: every slot
runs once, every event is logged once, every callback is delivered once, a node killed with
its runs in flight is taken over, and a database restart is survived.

The test process creates tasks straight in the store (as the `wakecall` command line would)
and inspects the database; only the nodes run anything.
"""

from __future__ import annotations

import itertools
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from support.loopback import Receiver, serve_receiver
from support.postgres import (
    LISTENERS_SQL,
    POSTGRES_URL,
    Database,
    PrivateServer,
    database,
    find_bindir,
    poll_until,
)
from wakecall.actions.command import CommandPolicy
from wakecall.actions.policy import ActionPolicy
from wakecall.clock import SystemClock
from wakecall.delivery.signing import new_secret
from wakecall.engine import EngineConfig, TaskService
from wakecall.models import CatchUp, CommandAction, NoopAction, RetryPolicy, Task, TaskSpec
from wakecall.store.base import NewTask
from wakecall.testing import LOOPBACK_POLICY

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
        # The nodes' policy: callbacks to the loopback receiver, `sleep` as a command.
        policy = ActionPolicy(LOOPBACK_POLICY.outbound, CommandPolicy(True, ("sleep",)))
        config = EngineConfig(tasks_per_minute=100_000)  # thousands of tasks at once
        self.tasks = TaskService(db.store, clock=SystemClock(), config=config, policy=policy)
        self.secret = new_secret()
        receiver.secrets.append(self.secret)

    async def create(self, owner: str, spec: TaskSpec) -> Task:
        (task,) = await self.create_many([(owner, spec)])
        return task

    async def create_many(self, specs: list[tuple[str, TaskSpec]]) -> list[Task]:
        """The tasks, each owner's written together (in transactions of 500), each with the
        receiver's secret as its callback secret."""
        by_owner: dict[str, list[TaskSpec]] = {}
        for owner, spec in specs:
            by_owner.setdefault(owner, []).append(spec)
        created: list[Task] = []
        for owner, owned in by_owner.items():
            for start in range(0, len(owned), 500):
                writes = []
                for spec in owned[start : start + 500]:
                    task = self.tasks.new_task(owner, spec)
                    writes.append(NewTask(task, self.secret if task.callback_url else None))
                written = await self.tasks.write(owner, writes)
                created += [w.task for w in written if w.task is not None]
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


async def assert_every_callback_once(
    db: Database, receiver: Receiver, *, repeats_allowed: int = 0
) -> None:
    """Every callback event made one delivery, delivered, and the receiver took each once
    (callbacks are at least once: one in flight when a node dies is sent again, with the same
    `webhook-id`, so a fault test allows a few repeats)."""
    deliveries = await db.rows("SELECT id, status FROM deliveries")
    callback_events = await db.value(
        "SELECT count(*) FROM events e JOIN tasks t ON t.id = e.task_id "
        "WHERE t.callback_url IS NOT NULL"
    )
    assert len(deliveries) == callback_events > 0
    assert {d["status"] for d in deliveries} == {"delivered"}
    received = Counter(a["webhook-id"] for a in receiver.attempts)
    assert set(received) == {d["id"] for d in deliveries}
    repeated = sum(n - 1 for n in received.values())
    assert repeated <= repeats_allowed, [k for k, n in received.items() if n > 1][:5]
    assert len(receiver.bodies) == len(receiver.attempts)  # each verified with its secret


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
                    await setup.tasks.pause("local", task.id)
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


async def test_postgres_a_killed_node_is_taken_over_and_nothing_is_lost_or_doubled(
    wakecall: Any,
) -> None:
    assert POSTGRES_URL
    flags = ("--commands", "sleep", "--lease", "3s", "--concurrency", "8")
    async with (
        database(POSTGRES_URL) as db,
        serve_receiver() as receiver,
        nodes(wakecall, db, 2, *flags, new_session=True) as servers,
    ):
        setup = Setup(db, receiver)
        hook = receiver.url("/hook")
        due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
        specs = [
            (
                "local",
                TaskSpec(
                    name=f"slow-{i}",
                    schedule={"type": "once", "at": due.isoformat()},
                    action=CommandAction(argv=["sleep", "3"]),
                    # Ten may be retried once; six may not.
                    retry=RetryPolicy(attempts=2 if i < 10 else 1, delay="1s", jitter=False),
                    callback_url=hook,
                ),
            )
            for i in range(16)
        ]
        slow = await setup.create_many(specs)
        ticker = await setup.create(
            "local",
            TaskSpec(
                name="tick",
                schedule="@every 1s",
                action=NoopAction(),
                catchup=CatchUp.ALL,
                callback_url=hook,
            ),
        )
        slow_ids = [t.id for t in slow]

        async def all_started() -> bool:
            started = await db.value(
                "SELECT count(*) FROM runs WHERE task_id = ANY($1::text[]) AND status = 'running'",
                slow_ids,
            )
            return bool(started == len(slow_ids))

        with anyio.fail_after(60):
            await poll_until(all_started)
            held = {
                r["id"]: r["task_id"]
                for r in await db.rows(
                    "SELECT id, task_id FROM runs WHERE claimed_by = 'node-0' "
                    "AND status = 'running' AND task_id = ANY($1::text[])",
                    slow_ids,
                )
            }
            assert held, "node-0 runs none of the slow runs"
            os.killpg(servers[0].process.pid, signal.SIGKILL)  # the node and its `sleep`s
            await servers[0].process.wait()

            async def slow_done() -> bool:
                left = await db.value(
                    "SELECT count(*) FROM runs WHERE task_id = ANY($1::text[]) "
                    "AND status IN ('queued', 'running')",
                    slow_ids,
                )
                return bool(left == 0)

            await poll_until(slow_done)
            await setup.tasks.pause("local", ticker.id)
            await poll_until(lambda: settled(db))

        assert servers[1].process.returncode is None
        for task in slow:
            runs = await db.rows("SELECT id, status FROM runs WHERE task_id = $1", task.id)
            assert len(runs) == 1, (task.name, runs)  # one run per slot, none lost
            (run,) = runs
            attempts = await db.rows(
                "SELECT status, node, error_message FROM attempts WHERE run_id = $1 "
                "ORDER BY number",
                run["id"],
            )
            if run["id"] not in held:
                assert [a["status"] for a in attempts] == ["success"]
                assert run["status"] == "success"
                continue
            # Taken over from the dead node after its lease: interrupted, then retried by the
            # survivor when the policy allows.
            assert attempts[0]["status"] == "interrupted" and attempts[0]["node"] == "node-0"
            assert "lease expired" in attempts[0]["error_message"]
            if task.retry.attempts == 2:
                assert [(a["status"], a["node"]) for a in attempts[1:]] == [("success", "node-1")]
                assert run["status"] == "success"
            else:
                assert len(attempts) == 1 and run["status"] == "failure"
        await assert_slots_contiguous(db, [ticker.id])
        await assert_every_event_once(db)
        await assert_every_callback_once(db, receiver, repeats_allowed=3)


BINDIR = find_bindir()


@pytest.mark.skipif(BINDIR is None, reason="needs PostgreSQL's initdb and pg_ctl")
async def test_postgres_nodes_ride_out_a_database_restart(wakecall: Any) -> None:
    assert BINDIR is not None
    async with (
        PrivateServer(BINDIR) as server,
        database(server.url) as db,
        serve_receiver() as receiver,
        nodes(wakecall, db, 2, "--commands", "sleep") as servers,
    ):
        setup = Setup(db, receiver)
        hook = receiver.url("/hook")
        start = datetime.now(UTC).replace(microsecond=0)
        tickers = [
            await setup.create(
                "local",
                TaskSpec(
                    name=f"tick-{i}",
                    schedule="@every 1s",
                    action=NoopAction(),
                    catchup=CatchUp.ALL,
                    callback_url=hook,
                ),
            )
            for i in range(2)
        ]
        # Two runs still executing while the database is down; fifty fires due meanwhile.
        in_flight = [
            await setup.create(
                "local",
                TaskSpec(
                    name=f"long-{i}",
                    schedule={"type": "once", "at": (start + timedelta(seconds=3)).isoformat()},
                    action=CommandAction(argv=["sleep", "5"]),
                    callback_url=hook,
                ),
            )
            for i in range(2)
        ]
        during = await setup.create_many(
            [
                ("local", once_at(start + timedelta(seconds=7), f"during-{i}", callback_url=hook))
                for i in range(50)
            ]
        )
        long_ids = [t.id for t in in_flight]

        async def long_running() -> bool:
            n = await db.value(
                "SELECT count(*) FROM runs WHERE task_id = ANY($1::text[]) AND status = 'running'",
                long_ids,
            )
            return bool(n == len(long_ids))

        with anyio.fail_after(90):
            await poll_until(long_running)
            await db.conn.close()
            await server.stop()
            # The outage lasts until the long runs have ended (about start + 8 s) and the
            # fifty have fallen due (start + 7 s).
            await poll_until(lambda: _past(start + timedelta(seconds=8.5)))
            await server.start()
            await db.reconnect()
            await poll_until(lambda: _past(start + timedelta(seconds=16)))
            for ticker in tickers:
                await setup.tasks.pause("local", ticker.id)
            await poll_until(lambda: settled(db))

        assert [s.process.returncode for s in servers] == [None, None]
        # The runs that were executing finished once, on their first attempt.
        for task in in_flight:
            runs = await db.rows("SELECT status, attempt FROM runs WHERE task_id = $1", task.id)
            assert [(r["status"], r["attempt"]) for r in runs] == [("success", 1)]
        # The fires due during the outage ran once each, afterwards.
        per_task = dict(
            await db.rows(
                "SELECT task_id, count(*) FROM runs WHERE task_id = ANY($1::text[]) "
                "AND status = 'success' GROUP BY task_id",
                [t.id for t in during],
            )
        )
        assert len(per_task) == len(during) and set(per_task.values()) == {1}
        # The tickers' seconds, including those of the outage (caught up), each ran once.
        counts = await assert_slots_contiguous(db, [t.id for t in tickers])
        assert min(counts.values()) >= 12
        await assert_every_event_once(db)
        await assert_every_callback_once(db, receiver, repeats_allowed=3)
        for node in servers:
            assert "listening for hints" in node.stderr_text  # came back by itself


async def test_postgres_a_task_created_elsewhere_wakes_sleeping_nodes_at_once(
    wakecall: Any,
) -> None:
    """The nodes would sleep a minute between looks; the hint of the new task wakes them."""
    assert POSTGRES_URL
    async with (
        database(POSTGRES_URL) as db,
        serve_receiver() as receiver,
        nodes(wakecall, db, 2, "--poll-interval", "60s"),
    ):
        setup = Setup(db, receiver)

        async def both_listening() -> bool:
            listeners = await db.value(LISTENERS_SQL, db.store.channel)
            return bool(listeners == 2)

        # Both nodes listen for hints (their first look at the empty store comes before: the
        # listener connects after the loop has started).
        with anyio.fail_after(20):
            await poll_until(both_listening)
        task = await setup.create(
            "local", once_at(datetime.now(UTC) + timedelta(seconds=1), "soon")
        )

        async def ran() -> bool:
            status = await db.value("SELECT status FROM runs WHERE task_id = $1", task.id)
            return bool(status == "success")

        with anyio.fail_after(20):  # well under the 60 s a node would otherwise sleep
            await poll_until(ran)
        started, fire = (
            await db.rows("SELECT started_at, scheduled_for FROM runs WHERE task_id = $1", task.id)
        )[0]
        assert started - fire < timedelta(seconds=5)
