"""Where SQLite work should run, measured: the event loop's lag (a 1 ms timer's lateness) and
the throughput of fire-sized write transactions, three ways:

* `loop`: each transaction a function run on the loop's thread (the store before this
  change), in batches sized to a budget so that no call holds the loop long;
* `thread`: each transaction a function handed whole to a thread of the store's own
  (`wakecall.store.sqlite.connection.StoreThread`, what the store does now);
* `aiosqlite`: the same statements through aiosqlite, whose thread runs one statement per
  await (its public API has no way to hand it a whole transaction).

Each transaction writes what a fire of `batch` no-op tasks writes: the runs, the tasks moved
on, the attempts and the events, as `executemany` statements over rows built in Python.

    python -m benchmarks.sqlite_threads --batches 200 --batch 64
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from benchmarks.common import percentile

SCHEMA = (
    "CREATE TABLE runs (id TEXT PRIMARY KEY, task_id TEXT, status TEXT, due_at INTEGER, "
    "finished_at INTEGER, output TEXT)",
    "CREATE INDEX runs_task ON runs(task_id, id)",
    "CREATE INDEX runs_finished ON runs(finished_at)",
    "CREATE TABLE tasks (id TEXT PRIMARY KEY, next_fire_at INTEGER, run_count INTEGER)",
    "CREATE TABLE attempts (run_id TEXT, number INTEGER, status TEXT, PRIMARY KEY (run_id, "
    "number)) WITHOUT ROWID",
    "CREATE TABLE events (owner TEXT, cursor INTEGER, type TEXT, payload TEXT)",
    "CREATE UNIQUE INDEX events_owner ON events(owner, cursor)",
)


def _rows(batch: int, offset: int) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of one fire of `batch` tasks (built in Python, as the store builds them)."""
    runs, tasks, attempts, events = [], [], [], []
    for i in range(offset, offset + batch):
        run_id = f"run_{i:012d}"
        payload = json.dumps({"task": {"id": f"tsk_{i}", "name": "burst"}, "run": {"id": run_id}})
        runs.append((run_id, f"tsk_{i}", "success", i, i, None))
        tasks.append((None, f"tsk_{i}"))
        attempts.append((run_id,))
        events.append(("bench", i, "task.run.completed", payload))
    return {"runs": runs, "tasks": tasks, "attempts": attempts, "events": events}


_STATEMENTS = (
    ("runs", "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?)"),
    ("tasks", "UPDATE tasks SET next_fire_at = ?, run_count = run_count + 1 WHERE id = ?"),
    ("attempts", "INSERT INTO attempts VALUES (?, 1, 'success')"),
    ("events", "INSERT INTO events VALUES (?, ?, ?, ?)"),
)


def _write(conn: sqlite3.Connection, batch: int, offset: int) -> None:
    rows = _rows(batch, offset)
    conn.execute("BEGIN IMMEDIATE")
    for table, sql in _STATEMENTS:
        conn.executemany(sql, rows[table])
    conn.execute("COMMIT")


def _open(path: Path, batches: int, batch: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    for statement in SCHEMA:
        conn.execute(statement)
    conn.executemany(
        "INSERT INTO tasks VALUES (?, 0, 0)", [(f"tsk_{i}",) for i in range(batches * batch)]
    )
    return conn


async def _lag_probe(lags: list[float], stop: anyio.Event) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        await anyio.sleep(0.001)
        lags.append(max(time.perf_counter() - start - 0.001, 0.0))


async def _measure(
    write: Callable[[int], Awaitable[None]], batches: int, batch: int
) -> dict[str, float]:
    lags: list[float] = []
    stop = anyio.Event()
    calls: list[float] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(_lag_probe, lags, stop)
        await anyio.sleep(0.05)
        began = time.perf_counter()
        for n in range(batches):
            start = time.perf_counter()
            await write(n * batch)
            calls.append(time.perf_counter() - start)
        elapsed = time.perf_counter() - began
        stop.set()
    return {
        "rows_per_s": batches * batch / elapsed,
        "call_ms_p50": percentile(calls, 50) * 1000,
        "lag_p50_ms": percentile(lags, 50) * 1000,
        "lag_p99_ms": percentile(lags, 99) * 1000,
        "lag_max_ms": max(lags) * 1000,
    }


async def _run(way: str, batches: int, batch: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="wakecall-threads-") as tmp:
        path = Path(tmp) / "t.db"
        conn = _open(path, batches, batch)
        if way == "loop":

            async def write(offset: int) -> None:
                _write(conn, batch, offset)
                await anyio.lowlevel.checkpoint()

            return await _measure(write, batches, batch)
        if way == "thread":
            from wakecall.store.sqlite.connection import StoreThread

            thread = StoreThread("bench")
            try:

                async def write(offset: int) -> None:
                    await thread.run(lambda c: _write(c, batch, offset), conn)

                return await _measure(write, batches, batch)
            finally:
                await thread.stop()
        conn.close()
        import aiosqlite

        async with aiosqlite.connect(path, isolation_level=None) as db:

            async def write(offset: int) -> None:
                rows = _rows(batch, offset)
                await db.execute("BEGIN IMMEDIATE")
                for table, sql in _STATEMENTS:
                    await db.executemany(sql, rows[table])
                await db.execute("COMMIT")

            return await _measure(write, batches, batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {}
    for _ in range(args.rounds):
        for way in ("loop", "thread", "aiosqlite"):
            results.setdefault(way, []).append(anyio.run(_run, way, args.batches, args.batch))
    for way, runs in results.items():
        keys = runs[0].keys()
        print(
            way,
            "  ".join(
                f"{k} {statistics.median(r[k] for r in runs):.2f}"
                f" ({min(r[k] for r in runs):.2f}-{max(r[k] for r in runs):.2f})"
                for k in keys
            ),
        )


if __name__ == "__main__":
    main()
