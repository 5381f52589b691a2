"""A PostgreSQL peer for the several-node cases: PgQueuer (from PyPI), a job queue on
PostgreSQL with deferred jobs (`execute_after`), on the same server as wakecall's cases
(`scripts/start-postgres`), in a fresh schema per run.

* `burst`: `n` jobs enqueued (one statement) to become due at one instant, a no-op coroutine
  entrypoint; jobs/s from that instant to the last job done; `nodes` worker processes.
* `lateness`: one job per nominal fire of the lateness part (1,000 "tasks" every second for
  20 s, starts spread over the second), each deferred to its fire; start − nominal fire.

Each job is counted by its id (burst) or its fire (lateness): every one exactly once.
PgQueuer runs with its defaults but for the batch size of its dequeue (100: its default of
10 takes a tenth of a burst per round trip).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import secrets
import time
from collections import Counter
from datetime import timedelta
from typing import Any

from benchmarks.common import POSTGRES_ENV, check_text, summary_ms

ENTRYPOINT = "noop"
BATCH = 100


def _url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        raise RuntimeError(f"{POSTGRES_ENV} is not set")
    return url


async def _connect(schema: str) -> Any:
    import asyncpg

    return await asyncpg.connect(_url(), server_settings={"search_path": schema})


async def _install(schema: str) -> None:
    import asyncpg
    from pgqueuer import Queries

    admin = await asyncpg.connect(_url())
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await admin.close()
    conn = await _connect(schema)
    try:
        await Queries.from_asyncpg_connection(conn).install(create_schema=False)
    finally:
        await conn.close()


async def _drop(schema: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(_url())
    try:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await admin.close()


async def _work(
    schema: str, expected: int, deadline: float, on_job: Any, results: dict[str, Any]
) -> None:
    """One worker: a QueueManager running until `expected` jobs were seen here or in total
    (the shared count in the database), or `deadline`."""
    from pgqueuer import Queries, QueueManager

    conn = await _connect(schema)
    qm = QueueManager(Queries.from_asyncpg_connection(conn))

    @qm.entrypoint(ENTRYPOINT)
    async def noop(job: Any) -> None:
        on_job(job)

    async def stop_when_done() -> None:
        probe = await _connect(schema)
        try:
            while time.time() < deadline:
                left = await probe.fetchval("SELECT count(*) FROM pgqueuer")
                if left == 0 and results["seen"] > 0:
                    break
                await asyncio.sleep(0.05)
        finally:
            await probe.close()
            qm.shutdown.set()

    watcher = asyncio.create_task(stop_when_done())
    try:
        await qm.run(batch_size=BATCH, log_aggregation_interval=timedelta(0))
    finally:
        watcher.cancel()
        await conn.close()


def _burst_node(schema: str, n: int, due: float, deadline: float, out: Any) -> None:
    seen: Counter[int] = Counter()
    results: dict[str, Any] = {"seen": 0, "last": 0.0}

    def on_job(job: Any) -> None:
        seen[int(job.id)] += 1
        results["seen"] += 1
        results["last"] = time.time()

    asyncio.run(_work(schema, n, deadline, on_job, results))
    out.put({"ids": dict(seen), "last": results["last"]})


def burst(n: int = 10_000, nodes: int = 1, lead_s: float = 3.0) -> dict[str, Any]:
    """`n` no-op jobs due at one instant, drained by `nodes` worker processes."""
    from pgqueuer import Queries

    schema = f"pgq_{os.getpid()}_{secrets.token_hex(3)}"

    async def enqueue() -> float:
        await _install(schema)
        conn = await _connect(schema)
        try:
            due = time.time() + lead_s + n / 10_000
            after = timedelta(seconds=due - time.time())
            await Queries.from_asyncpg_connection(conn).enqueue(
                [ENTRYPOINT] * n, [None] * n, [0] * n, [after] * n
            )
            if time.time() > due:
                raise RuntimeError("enqueueing took longer than the lead time; raise lead_s")
            return due
        finally:
            await conn.close()

    try:
        due = asyncio.run(enqueue())
        out: Any = multiprocessing.get_context("spawn").Queue()
        workers = [
            multiprocessing.get_context("spawn").Process(
                target=_burst_node, args=(schema, n, due, due + 600, out)
            )
            for _ in range(nodes)
        ]
        for worker in workers:
            worker.start()
        reports = [out.get(timeout=900) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
    finally:
        asyncio.run(_drop(schema))
    ids: Counter[int] = Counter()
    for report in reports:
        ids.update({int(k): v for k, v in report["ids"].items()})
    last = max(r["last"] for r in reports)
    twice = sum(1 for v in ids.values() if v > 1)
    good = len(ids) == n and twice == 0
    elapsed = last - due
    return {
        "runs_per_s": n / elapsed if elapsed > 0 else 0.0,
        "elapsed_s": elapsed,
        "per_node": [sum(r["ids"].values()) for r in reports],
        "check": check_text(
            good,
            f"{sum(ids.values())} executions of {len(ids)}/{n} jobs, {twice} twice"
            + (f"; per node {[sum(r['ids'].values()) for r in reports]}" if nodes > 1 else "")
            + (": each exactly once" if good else ": MISMATCH"),
        ),
    }


def lateness(tasks: int = 1000, duration_s: float = 20) -> dict[str, Any]:
    """One deferred job per nominal fire; start − nominal fire time."""
    from pgqueuer import Queries

    schema = f"pgq_{os.getpid()}_{secrets.token_hex(3)}"
    lateness_s: list[float] = []
    fires: Counter[tuple[int, int]] = Counter()

    def on_job(job: Any) -> None:
        task, k, nominal = json.loads(job.payload)
        lateness_s.append(time.time() - nominal)
        fires[(task, k)] += 1

    async def body() -> None:
        await _install(schema)
        conn = await _connect(schema)
        start = time.time() + 3 + tasks * 0.001
        periods = int(duration_s)
        try:
            payloads = []
            for task in range(tasks):
                for k in range(periods):
                    nominal = start + task * 0.001 + k
                    payloads.append((task, k, nominal))
            now = time.time()
            await Queries.from_asyncpg_connection(conn).enqueue(
                [ENTRYPOINT] * len(payloads),
                [json.dumps(p).encode() for p in payloads],
                [0] * len(payloads),
                [timedelta(seconds=p[2] - now) for p in payloads],
            )
        finally:
            await conn.close()
        results: dict[str, Any] = {"seen": 0}

        def counted(job: Any) -> None:
            results["seen"] += 1
            on_job(job)

        await _work(schema, tasks * periods, start + duration_s + 5, counted, results)

    try:
        asyncio.run(body())
    finally:
        asyncio.run(_drop(schema))
    expected = tasks * int(duration_s)
    never = expected - len(fires)
    twice = sum(1 for v in fires.values() if v > 1)
    good = never == 0 and twice == 0
    return {
        **summary_ms(lateness_s),
        "never_ran": never,
        "check": check_text(
            good,
            f"{len(fires)} of {expected} fires ran, {never} never ran, {twice} twice"
            + (": each exactly once" if good else ""),
        ),
    }
