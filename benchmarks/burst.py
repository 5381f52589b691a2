"""Part 1, burst: N one-shot tasks due at the same instant, a no-op action; runs per second
from that instant to the last run completed (durable, with its event, for wakecall).

Each function runs one measurement and returns its figures and its correctness check.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

from benchmarks.common import (
    POSTGRES_ENV,
    ROOT,
    TimedStore,
    bulk_insert_tasks,
    check_text,
    clone_tasks,
    service,
    sqlite_rows,
    us,
    utcnow,
)

OWNER = "bench"


def engine_config(
    concurrency: int | None, batch_size: int | None, node_id: str | None = None
) -> Any:
    """The engine's defaults, but for the given concurrency and batch size (None: default)
    and no per-owner limit on tasks held or created per minute (the benchmarks create
    thousands in a few seconds)."""
    from wakecall.engine import EngineConfig

    kwargs: dict[str, Any] = {"max_tasks_per_owner": 10_000_000, "tasks_per_minute": 10_000_000}
    if concurrency is not None:
        kwargs["concurrency"] = concurrency
    if batch_size is not None:
        kwargs["batch_size"] = batch_size
    if node_id is not None:
        kwargs["node_id"] = node_id
    return EngineConfig(**kwargs)


class AsyncNoop:
    """A no-op executor without an instant end: its runs take the path of an action that
    calls something outside (a webhook, a command): queued, started by a worker, finished by
    the run writer. Registered as the `noop` executor for the `path="worker"` cases."""

    async def execute(self, ctx: Any) -> None:
        return None


def executors_for(path: str) -> Any:
    """The engine's executors for a burst path: "instant" (the defaults: `noop` runs end in
    the pass that fires them) or "worker" (`noop` runs go through the workers)."""
    from wakecall.actions import default_executors

    if path == "instant":
        return None
    if path == "worker":
        return {**default_executors(), "noop": AsyncNoop()}
    raise ValueError(f"unknown burst path {path!r}")


async def seed_burst(store: Any, engine: Any, n: int, due: datetime) -> str:
    """N active one-shot no-op tasks due at `due`: the first through `TaskService.create`,
    the rest copies of it inserted in bulk."""
    from wakecall.models import NoopAction, TaskSpec

    spec = TaskSpec(
        name="burst", schedule={"type": "once", "at": due.isoformat()}, action=NoopAction()
    )
    template = (await service(engine).create(OWNER, spec)).task
    return await bulk_insert_tasks(store, clone_tasks(template, n - 1, "burst"))


class _Completion:
    """An engine listener: counts run events, notes when the n-th one was written."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.last: datetime | None = None
        self.done = anyio.Event()

    def __call__(self, events: Any) -> None:
        for event in events:
            if event.run_id is not None:
                self.count += 1
        if self.count >= self.n and not self.done.is_set():
            self.last = utcnow()
            self.done.set()


def _sqlite_check(path: Path, n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    ((runs, tasks, ok, started, finished),) = sqlite_rows(
        path,
        "SELECT count(*), count(DISTINCT task_id), sum(status = 'success'), min(started_at), "
        "max(finished_at) FROM runs",
    )
    ((events,),) = sqlite_rows(
        path, "SELECT count(*) FROM events WHERE type = 'task.run.completed'"
    )
    ((attempts,),) = sqlite_rows(path, "SELECT count(*) FROM attempts")
    good = runs == n and tasks == n and ok == n and events == n and attempts == n
    text = (
        f"{runs} runs for {tasks}/{n} tasks, {ok} success, {events} events, "
        f"{attempts} attempts: " + ("each exactly once" if good else "MISMATCH")
    )
    return check_text(good, text), {"first_start_us": started, "last_finish_us": finished}


def wakecall_sqlite(
    n: int = 10_000,
    concurrency: int | None = None,
    batch_size: int | None = None,
    lead_s: float = 2.0,
    timeout_s: float = 600,
    profile: str | None = None,
    path: str = "instant",
) -> dict[str, Any]:
    """wakecall on a SQLite file in a temporary directory; `path`: see `executors_for`."""

    async def body() -> dict[str, Any]:
        from wakecall.engine import Engine
        from wakecall.store import SQLiteStore

        with tempfile.TemporaryDirectory(prefix="wakecall-burst-") as tmp:
            db = Path(tmp) / "burst.db"
            raw = SQLiteStore(db)
            await raw.open()
            store = TimedStore(raw) if profile else raw
            try:
                engine = Engine(
                    store,
                    config=engine_config(concurrency, batch_size),
                    executors=executors_for(path),
                )
                due = utcnow() + timedelta(seconds=lead_s + n / 20_000)
                how = await seed_burst(raw, engine, n, due)
                if utcnow() > due:
                    raise RuntimeError("seeding took longer than the lead time; raise lead_s")
                done = _Completion(n)
                engine.fanout.add_listener(done)
                profiler = _start_profiler(profile, raw)
                async with engine:
                    with anyio.fail_after(timeout_s):
                        await done.done.wait()
                report = _stop_profiler(profiler)
            finally:
                await raw.close()
            check, extra = _sqlite_check(db, n)
        assert done.last is not None
        elapsed = (done.last - due).total_seconds()
        result = {
            "concurrency": engine.config.concurrency,
            "path": path,
            "runs_per_s": n / elapsed,
            "elapsed_s": elapsed,
            "check": check,
            "seed": how,
            "first_start_lag_ms": (extra["first_start_us"] - us(due)) / 1000,
        }
        if profile:
            result["store_calls"] = store.report()
            result["profile"] = report
        return result

    return anyio.run(body)


# --- profiling (used by `benchmarks.profiling`) ----------------------------------------------
def _start_profiler(kind: str | None, store: Any) -> Any:
    if not kind:
        return None
    from benchmarks.profiling import Profiler

    profiler = Profiler(kind, store)
    profiler.start()
    return profiler


def _stop_profiler(profiler: Any) -> Any:
    if profiler is None:
        return None
    return profiler.stop()


# --- PostgreSQL: one node in this process, or several node processes ------------------------
def _pg_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        raise RuntimeError(f"{POSTGRES_ENV} is not set")
    return url


async def _pg_counts(url: str, schema: str) -> tuple[int, int, int, int, int, int]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            f"SELECT count(*) AS runs, count(DISTINCT task_id) AS tasks, "
            f"count(*) FILTER (WHERE status = 'success') AS ok FROM \"{schema}\".runs"
        )
        events = await conn.fetchval(
            f"SELECT count(*) FROM \"{schema}\".events WHERE type = 'task.run.completed'"
        )
        attempts = await conn.fetchval(f'SELECT count(*) FROM "{schema}".attempts')
        dupes = await conn.fetchval(
            f'SELECT count(*) FROM (SELECT task_id FROM "{schema}".runs '
            "GROUP BY task_id HAVING count(*) > 1) d"
        )
        return row["runs"], row["tasks"], row["ok"], events, attempts, dupes
    finally:
        await conn.close()


def wakecall_postgres(
    n: int = 10_000,
    nodes: int = 1,
    concurrency: int | None = None,
    batch_size: int | None = None,
    lead_s: float = 3.0,
    timeout_s: float = 600,
    path: str = "instant",
) -> dict[str, Any]:
    """wakecall on PostgreSQL (a fresh schema per run). With nodes > 1, each node is its own
    process running an engine on the shared schema. `path`: see `executors_for`."""
    url = _pg_url()
    schema = f"bench_{os.getpid()}_{secrets.token_hex(3)}"

    async def body() -> dict[str, Any]:
        from wakecall.engine import Engine
        from wakecall.store.postgres import PostgresStore

        store = PostgresStore(url, schema=schema)
        await store.open()
        try:
            engine = Engine(
                store, config=engine_config(concurrency, batch_size), executors=executors_for(path)
            )
            due = utcnow() + timedelta(seconds=lead_s + n / 5_000 + (2.5 if nodes > 1 else 0))
            how = await seed_burst(store, engine, n, due)
            if nodes == 1:
                if utcnow() > due:
                    raise RuntimeError("seeding took longer than the lead time; raise lead_s")
                done = _Completion(n)
                engine.fanout.add_listener(done)
                async with engine:
                    with anyio.fail_after(timeout_s):
                        await done.done.wait()
                assert done.last is not None
                last = done.last
                per_node = [done.count]
            else:
                last, per_node = await _run_nodes(
                    url, schema, n, nodes, due, concurrency, batch_size, timeout_s, path
                )
            runs, tasks, ok, events, attempts, dupes = await _pg_counts(url, schema)
        finally:
            try:
                await store.drop_schema()
            finally:
                await store.close()
        good = runs == n and tasks == n and ok == n and events == n and attempts == n and not dupes
        check = check_text(
            good,
            f"{runs} runs for {tasks}/{n} tasks, {ok} success, {events} events, {attempts} "
            f"attempts, {dupes} duplicated: "
            + ("each exactly once" if good else "MISMATCH")
            + (f"; per node {per_node}" if nodes > 1 else ""),
        )
        elapsed = (last - due).total_seconds()
        return {
            "concurrency": engine.config.concurrency,
            "path": path,
            "runs_per_s": n / elapsed,
            "elapsed_s": elapsed,
            "check": check,
            "seed": how,
        }

    return anyio.run(body)


def _spawn_node(args: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.burst", "node", json.dumps(args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=str(ROOT),
        text=True,
    )


async def _run_nodes(
    url: str,
    schema: str,
    n: int,
    nodes: int,
    due: datetime,
    concurrency: int,
    batch_size: int,
    timeout_s: float,
    path: str,
) -> tuple[datetime, list[int]]:
    """Start `nodes` engine processes, wait until the schema holds n finished runs, stop them;
    the latest instant any node wrote its last run, and each node's run count."""
    import asyncpg

    args = {
        "url": url,
        "schema": schema,
        "concurrency": concurrency,
        "batch_size": batch_size,
        "path": path,
    }
    procs = [_spawn_node({**args, "node": i}) for i in range(nodes)]
    try:
        for proc in procs:  # each says "ready" once its engine runs
            assert proc.stdout is not None
            with anyio.fail_after(30):
                line = await anyio.to_thread.run_sync(proc.stdout.readline)
            if line.strip() != "ready":
                raise RuntimeError(f"a node did not start: {line!r}")
        if utcnow() > due:
            raise RuntimeError("nodes started after the due instant; raise lead_s")
        conn = await asyncpg.connect(url)
        try:
            with anyio.fail_after(timeout_s):
                while True:
                    await anyio.sleep(0.2)
                    finished = await conn.fetchval(
                        f'SELECT count(*) FROM "{schema}".runs WHERE finished_at IS NOT NULL'
                    )
                    if finished >= n:
                        break
        finally:
            await conn.close()
        await anyio.sleep(0.3)  # let the nodes publish their last batch
        reports = []
        for proc in procs:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write("stop\n")
            proc.stdin.flush()
            line = await anyio.to_thread.run_sync(proc.stdout.readline)
            reports.append(json.loads(line))
        lasts = [datetime.fromisoformat(r["last"]) for r in reports if r["last"]]
        return max(lasts), [r["count"] for r in reports]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


def _node_main(raw: str) -> None:
    """One node of the multi-node PostgreSQL burst (a separate process)."""
    args = json.loads(raw)

    async def body() -> None:
        from wakecall.engine import Engine
        from wakecall.store.postgres import PostgresStore

        store = PostgresStore(args["url"], schema=args["schema"])
        await store.open()
        count = 0
        last: datetime | None = None

        def listener(events: Any) -> None:
            nonlocal count, last
            runs = sum(1 for e in events if e.run_id is not None)
            if runs:
                count += runs
                last = utcnow()

        config = engine_config(args["concurrency"], args["batch_size"], f"node-{args['node']}")
        try:
            async with Engine(
                store, config=config, executors=executors_for(args["path"])
            ) as engine:
                engine.fanout.add_listener(listener)
                print("ready", flush=True)
                await anyio.to_thread.run_sync(sys.stdin.readline)
        finally:
            await store.close()
        print(json.dumps({"count": count, "last": last.isoformat() if last else None}), flush=True)

    anyio.run(body)


# --- APScheduler 3.11 ------------------------------------------------------------------------
async def aps_noop() -> None:
    """The peer's job: a coroutine that does nothing (run on the event loop, as wakecall's
    no-op action is)."""
    return None


def aps_scheduler(store: str, tmp: str, job_defaults: dict[str, Any]) -> tuple[Any, Any]:
    """An AsyncIOScheduler (UTC) on a MemoryJobStore or a SQLAlchemyJobStore (SQLite file in
    `tmp`, pysqlite's defaults), with a `staging` memory store used by `aps_seed`."""
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    if store == "memory":
        jobstore: Any = MemoryJobStore()
    else:
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

        jobstore = SQLAlchemyJobStore(url=f"sqlite:///{tmp}/aps.db")
    scheduler = AsyncIOScheduler(
        jobstores={"default": jobstore, "staging": MemoryJobStore()},
        job_defaults=job_defaults,
        timezone="UTC",
    )
    return scheduler, jobstore


def aps_seed(scheduler: Any, jobstore: Any, jobs: list[dict[str, Any]]) -> str:
    """Add jobs to a paused scheduler's default store. The SQLAlchemy store gets them in one
    bulk INSERT of the rows its own `add_job` would write (one transaction instead of one per
    job), which only shortens the set-up."""
    from apscheduler.jobstores.memory import MemoryJobStore

    if isinstance(jobstore, MemoryJobStore):
        for job in jobs:
            scheduler.add_job(**job)
        return "add_job"
    import pickle

    from apscheduler.util import datetime_to_utc_timestamp

    staged = [scheduler.add_job(jobstore="staging", **job) for job in jobs]
    rows = [
        {
            "id": job.id,
            "next_run_time": datetime_to_utc_timestamp(job.next_run_time),
            "job_state": pickle.dumps(job.__getstate__(), jobstore.pickle_protocol),
        }
        for job in staged
    ]
    scheduler.remove_all_jobs(jobstore="staging")
    with jobstore.engine.begin() as connection:
        connection.execute(jobstore.jobs_t.insert(), rows)
    return "bulk insert of add_job's rows"


def apscheduler(
    n: int = 10_000, store: str = "memory", lead_s: float = 2.0, timeout_s: float = 600
) -> dict[str, Any]:
    """APScheduler 3 (AsyncIOScheduler, its default AsyncIOExecutor, a coroutine no-op):
    N date-trigger jobs at one instant, with MemoryJobStore or SQLAlchemyJobStore on a SQLite
    file. Jobs may run however late (misfire_grace_time=None) so that every one runs."""
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED

    async def body(tmp: str) -> dict[str, Any]:
        scheduler, jobstore = aps_scheduler(
            store, tmp, {"misfire_grace_time": None, "coalesce": False}
        )
        executed: dict[str, int] = {}
        missed = errors = 0
        last: list[datetime] = []
        finished = asyncio.Event()

        def listener(event: Any) -> None:
            nonlocal missed, errors
            if event.code == EVENT_JOB_EXECUTED:
                executed[event.job_id] = executed.get(event.job_id, 0) + 1
                if len(executed) >= n and not last:
                    last.append(utcnow())
                    finished.set()
            elif event.code == EVENT_JOB_MISSED:
                missed += 1
            else:
                errors += 1

        scheduler.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_ERROR)
        scheduler.start(paused=True)
        due = utcnow() + timedelta(seconds=lead_s + n / 20_000)
        how = aps_seed(
            scheduler,
            jobstore,
            [
                {
                    "func": "benchmarks.burst:aps_noop",
                    "trigger": "date",
                    "run_date": due,
                    "id": f"j{i}",
                }
                for i in range(n)
            ],
        )
        ready = utcnow()
        start = max(due, ready)
        scheduler.resume()
        try:
            await asyncio.wait_for(finished.wait(), timeout_s)
        finally:
            scheduler.shutdown(wait=False)
        runs = sum(executed.values())
        good = runs == n and len(executed) == n and not missed and not errors
        check = check_text(
            good,
            f"{runs} executions of {len(executed)}/{n} jobs, {missed} missed, {errors} errors: "
            + ("each exactly once" if good else "MISMATCH"),
        )
        elapsed = (last[0] - start).total_seconds()
        return {
            "runs_per_s": n / elapsed,
            "elapsed_s": elapsed,
            "check": check,
            "seed": how,
            "seeded_late": ready > due,
        }

    with tempfile.TemporaryDirectory(prefix="aps-burst-") as tmp:
        return asyncio.run(body(tmp))


if __name__ == "__main__":
    if sys.argv[1] == "node":
        _node_main(sys.argv[2])
    else:
        raise SystemExit(f"unknown command {sys.argv[1]!r}")
