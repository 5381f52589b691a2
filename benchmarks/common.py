"""Shared by the benchmark workers: statistics, the machine's description, building many tasks
at once, a store wrapper that times every call, and reading back what a run left in the store.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ENV = "WAKECALL_TEST_POSTGRES_URL"


# --- numbers ---------------------------------------------------------------------------------
def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def summary_ms(values_s: Sequence[float]) -> dict[str, float]:
    """p50, p99 and max of durations given in seconds, in milliseconds."""
    return {
        "p50_ms": percentile(values_s, 50) * 1000,
        "p99_ms": percentile(values_s, 99) * 1000,
        "max_ms": (max(values_s) * 1000) if values_s else math.nan,
    }


def median_min_max(values: Iterable[float]) -> tuple[float, float, float]:
    clean = [v for v in values if v is not None and not math.isnan(v)]
    if not clean:
        return math.nan, math.nan, math.nan
    return statistics.median(clean), min(clean), max(clean)


#: Before each case the machine must be this quiet (share of all cores busy over a half-second
#: window) ...
QUIET_BUSY = 0.10
#: ... waiting at most this long for it. Other work on the cores would otherwise be measured
#: with the case.
QUIET_WAIT_S = 60.0


def us(value: datetime) -> int:
    """Microseconds since the epoch, as the SQLite store keeps instants."""
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- the machine -----------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return math.nan


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": round(_ram_gib(), 1),
        "python": platform.python_version(),
        "os": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "load_at_start": [round(x, 2) for x in load],
        "versions": {
            name: _version(name)
            for name in (
                "wakecall",
                "mcp",
                "anyio",
                "asyncpg",
                "httpx2",
                "uvicorn",
                "APScheduler",
                "SQLAlchemy",
                "pyinstrument",
            )
        },
    }


# --- building tasks in bulk ------------------------------------------------------------------
def service(engine: Any) -> Any:
    """The task operations (`TaskService`) on a running engine, as a server builds them."""
    from wakecall.testing import service_for

    return service_for(engine)


async def bulk_insert_tasks(store: Any, tasks: Sequence[Any], chunk: int = 50_000) -> str:
    """Insert `tasks` (`wakecall.models.Task` records) as fast as the backend allows: one
    `executemany` per chunk in one transaction each on SQLite and PostgreSQL (the stores'
    own row encoders), `write_tasks` per task on any other store. Returns the path taken."""
    from wakecall.store.sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):
        from wakecall.store.sqlite.rows import _TASK_COLUMNS, _task_to_row

        sql = (
            f"INSERT INTO tasks ({_TASK_COLUMNS}) "
            f"VALUES ({', '.join('?' * len(_TASK_COLUMNS.split(',')))})"
        )
        for start in range(0, len(tasks), chunk):
            rows = [_task_to_row(t) for t in tasks[start : start + chunk]]

            def write(conn: sqlite3.Connection, rows: list[Any] = rows) -> None:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(sql, rows)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")

            await store._call(write)
        return "sqlite executemany"
    try:
        from wakecall.store.postgres import PostgresStore
        from wakecall.store.postgres.rows import _task_to_row as pg_row
        from wakecall.store.postgres.sql import _TASK_COLUMNS as PG_COLUMNS
    except ImportError:
        PostgresStore = None  # type: ignore[assignment,misc]
    if PostgresStore is not None and isinstance(store, PostgresStore):
        width = len(PG_COLUMNS.split(","))
        marks = ", ".join(f"${i}" for i in range(1, width + 1))
        sql = f"INSERT INTO tasks ({PG_COLUMNS}) VALUES ({marks})"
        for start in range(0, len(tasks), chunk):
            rows = [pg_row(t) for t in tasks[start : start + chunk]]

            async def write(conn: Any, rows: list[Any] = rows) -> None:
                async with conn.transaction():
                    await conn.executemany(sql, rows)

            await store._call(write)
        return "postgres executemany"
    from wakecall.store.task_writes import NewTask

    for task in tasks:
        await store.write_tasks(task.owner, [NewTask(task)], task.created_at)
    return "write_tasks per task"


def clone_tasks(
    template: Any, count: int, name: str, make: Callable[[int], dict[str, Any]] | None = None
) -> list[Any]:
    """`count` copies of a stored task with fresh ids (and per-copy changes from `make`)."""
    from wakecall.ids import new_id

    out = []
    for i in range(count):
        changes = {"id": new_id("tsk"), "name": f"{name}-{i}"}
        if make is not None:
            changes.update(make(i))
        out.append(template.replace(**changes))
    return out


# --- timing every store call -----------------------------------------------------------------
@dataclass
class CallStats:
    calls: int = 0
    seconds: float = 0.0
    rows: int = 0


#: Store methods that run for the store's lifetime (watching for other processes' changes).
UNTIMED = frozenset({"watch"})


@dataclass
class TimedStore:
    """Wraps a store; every awaited method is counted and timed as the engine sees it (time from
    the call to the answer, including the wait for the database thread or server)."""

    inner: Any
    stats: dict[str, CallStats] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.inner, name)
        if not callable(value) or name.startswith("_") or name in UNTIMED:
            return value
        import inspect

        if not inspect.iscoroutinefunction(value):
            return value

        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                result = await value(*args, **kwargs)
            finally:
                entry = self.stats.setdefault(name, CallStats())
                entry.calls += 1
                entry.seconds += time.perf_counter() - start
            if isinstance(result, list | tuple):
                entry.rows += len(result)
            return result

        return timed

    def report(self) -> list[dict[str, Any]]:
        return [
            {"method": name, "calls": s.calls, "seconds": round(s.seconds, 4), "rows": s.rows}
            for name, s in sorted(self.stats.items(), key=lambda kv: -kv[1].seconds)
        ]


# --- reading back the SQLite store -----------------------------------------------------------
def sqlite_rows(path: str | Path, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def check_text(ok: bool, text: str) -> dict[str, Any]:
    return {"ok": bool(ok), "text": text}


def dump(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)
