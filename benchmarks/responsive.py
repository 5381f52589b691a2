"""Part 6, responsiveness: tool calls through the MCP SDK client, and the event loop's own
lag, while the engine works hard in the same process.

Two loads, on a SQLite file, with the server in memory (`Client(build_server(runtime))`, so
the client, the server and the engine share one event loop, as they share one process when
served):

* `burst`: 10,000 one-shot no-op tasks due at one instant (the burst of part 1);
* `prune`: a history of 1,000,000 finished runs (1,000 tasks with 1,000 runs each, finished
  over the last 40 days) that the engine's retention trims when it starts (runs past 30 days,
  and all but the newest 100 of each task).

While the load lasts, one client calls `create_task` and `list_runs` in turn, one call at a
time; each call's round trip is timed. A probe sleeps 1 ms over and over and notes how late
it wakes (the loop's lag: what every timer, lease renewal and push waits on top of its time).
"""

from __future__ import annotations

import gc
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

from benchmarks.common import (
    bulk_insert_tasks,
    check_text,
    clone_tasks,
    percentile,
    service,
    sqlite_rows,
    us,
    utcnow,
)

OWNER = "bench"
CALL_TIMEOUT = 30


def _ms(values_s: list[float], p: float) -> float:
    return percentile(values_s, p) * 1000


class _Probe:
    """Sleeps 1 ms again and again, noting how late each wake-up is."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.recording = False
        self.stop = False

    async def run(self) -> None:
        while not self.stop:
            start = time.perf_counter()
            await anyio.sleep(0.001)
            if self.recording:
                self.lags.append(max(time.perf_counter() - start - 0.001, 0.0))


class _Caller:
    """Calls `create_task` and `list_runs` in turn, one at a time, while `recording`."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.create: list[float] = []
        self.list_runs: list[float] = []
        self.errors = 0
        self.recording = False
        self.stop = False
        self.made = 0

    async def _timed(self, tool: str, args: dict[str, Any], into: list[float]) -> None:
        start = time.perf_counter()
        with anyio.fail_after(CALL_TIMEOUT):
            result = await self.client.call_tool(tool, args)
        took = time.perf_counter() - start
        if result.is_error:
            self.errors += 1
        if self.recording:
            into.append(took)

    async def once(self) -> None:
        self.made += 1
        await self._timed(
            "create_task",
            {"name": f"probe-{self.made}", "schedule": "0 0 1 1 *", "action": {"type": "noop"}},
            self.create,
        )
        await self._timed("list_runs", {"limit": 20}, self.list_runs)

    async def run(self) -> None:
        while not self.stop:
            await self.once()


def _figures(caller: _Caller, probe: _Probe) -> dict[str, Any]:
    return {
        "create_p50_ms": _ms(caller.create, 50),
        "create_p99_ms": _ms(caller.create, 99),
        "create_max_ms": max(caller.create, default=0) * 1000,
        "list_runs_p50_ms": _ms(caller.list_runs, 50),
        "list_runs_p99_ms": _ms(caller.list_runs, 99),
        "list_runs_max_ms": max(caller.list_runs, default=0) * 1000,
        "lag_p50_ms": _ms(probe.lags, 50),
        "lag_p99_ms": _ms(probe.lags, 99),
        "lag_max_ms": max(probe.lags, default=0) * 1000,
        "calls": len(caller.create) + len(caller.list_runs),
        "lag_samples": len(probe.lags),
    }


async def _measured(
    runtime: Any, ready: Callable[[], Any], load_done: anyio.Event
) -> tuple[_Caller, _Probe]:
    """Build the server and its client, warm them with a few calls, then await `ready()` and
    run the caller and the probe until `load_done`."""
    from mcp import Client

    from wakecall.server import build_server

    probe = _Probe()
    async with Client(build_server(runtime)) as client:
        caller = _Caller(client)
        for _ in range(20):  # the first calls build the server's validators and caches
            await caller.once()
        # As `wakecall serve` does once started: what lives for good is left out of the
        # garbage collector's passes.
        gc.collect()
        gc.freeze()
        await ready()
        async with anyio.create_task_group() as tg:
            tg.start_soon(probe.run)
            tg.start_soon(caller.run)
            caller.recording = probe.recording = True
            await load_done.wait()
            caller.recording = probe.recording = False
            caller.stop = probe.stop = True  # the call under way ends first
    return caller, probe


class _Completion:
    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.done = anyio.Event()
        self.last: datetime | None = None

    def __call__(self, events: Any) -> None:
        for event in events:
            if event.run_id is not None and event.owner == OWNER:
                self.count += 1
        if self.count >= self.n and not self.done.is_set():
            self.last = utcnow()
            self.done.set()


def burst(n: int = 10_000, lead_s: float = 1.5) -> dict[str, Any]:
    """Tool calls while `n` one-shot no-op tasks due at one instant fire."""

    async def body() -> dict[str, Any]:
        from wakecall.models import NoopAction, TaskSpec
        from wakecall.server import open_runtime
        from wakecall.settings import Settings

        with tempfile.TemporaryDirectory(prefix="wakecall-responsive-") as tmp:
            db = Path(tmp) / "burst.db"
            settings = Settings(
                store=str(db), log_level="WARNING", max_tasks=10_000_000, tasks_per_minute=10**7
            )
            async with open_runtime(settings) as rt:
                due = utcnow() + timedelta(seconds=lead_s + 5)
                spec = TaskSpec(
                    name="burst",
                    schedule={"type": "once", "at": due.isoformat()},
                    action=NoopAction(),
                )
                template = (await rt.tasks.create(OWNER, spec)).task
                await bulk_insert_tasks(rt.engine.store, clone_tasks(template, n - 1, "burst"))
                done = _Completion(n)
                rt.engine.fanout.add_listener(done)

                async def shortly_before_due() -> None:
                    await anyio.sleep(max((due - utcnow()).total_seconds() - 0.2, 0))

                caller, probe = await _measured(rt, shortly_before_due, done.done)
            ((runs, ok, events),) = sqlite_rows(
                db,
                "SELECT count(*), sum(status = 'success'), "
                "(SELECT count(*) FROM events WHERE type = 'task.run.completed' "
                "AND run_id IS NOT NULL) FROM runs WHERE task_id IN "
                "(SELECT id FROM tasks WHERE name LIKE 'burst%')",
            )
        assert done.last is not None
        elapsed = (done.last - due).total_seconds()
        good = runs == n and ok == n and events == n and caller.errors == 0
        return {
            **_figures(caller, probe),
            "runs_per_s": n / elapsed if elapsed > 0 else 0,
            "elapsed_s": elapsed,
            "check": check_text(
                good,
                f"{runs} runs, {ok} success, {events} events for {n} tasks; "
                f"{caller.errors} tool errors: " + ("each exactly once" if good else "MISMATCH"),
            ),
        }

    return anyio.run(body)


def _seed_history(db: Path, tasks: int, per_task: int, now: datetime) -> None:
    """`tasks` tasks with `per_task` finished runs each, finished over the last 40 days."""
    from wakecall.ids import new_id

    conn = sqlite3.connect(db)
    try:
        task_ids = [r[0] for r in conn.execute("SELECT id FROM tasks WHERE name LIKE 'hist%'")]
        span_us = int(timedelta(days=40).total_seconds() * 1_000_000)
        now_us = us(now)
        conn.execute("BEGIN")
        for task_id in task_ids:
            rows = []
            for i in range(per_task):
                at = now_us - span_us + span_us * i // per_task
                rows.append(
                    (
                        new_id("run"),
                        task_id,
                        OWNER,
                        "schedule",
                        at,
                        at,
                        "success",
                        1,
                        1,
                        at,
                        at,
                        at,
                        0,
                        None,
                        None,
                        None,
                        None,
                        0,
                        None,
                        1,
                    )
                )
            conn.executemany(
                "INSERT INTO runs (id, task_id, owner, trigger, scheduled_for, due_at, status, "
                "attempt, max_attempts, created_at, started_at, finished_at, duration_ms, "
                "output, error_message, claimed_by, lease_expires_at, cancel_requested, input, "
                "counts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            conn.executemany(
                "INSERT INTO attempts (run_id, number, status, started_at, finished_at, node) "
                "VALUES (?, 1, 'success', ?, ?, 'seed')",
                [(r[0], r[10], r[11]) for r in rows],
            )
        conn.execute("COMMIT")
    finally:
        conn.close()


class _PruneWatch:
    """A store wrapper that notes when the engine's first prune begins and ends."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.started: float | None = None
        self.counts: Any = None
        self.done = anyio.Event()
        self.release = anyio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def prune(self, *args: Any, **kwargs: Any) -> Any:
        await self.release.wait()  # held until the measurement is ready
        self.started = time.perf_counter()
        try:
            self.counts = await self._inner.prune(*args, **kwargs)
            return self.counts
        finally:
            if not self.done.is_set():
                self.done.set()


def prune(tasks: int = 1_000, per_task: int = 1_000) -> dict[str, Any]:
    """Tool calls while the engine's retention trims `tasks` × `per_task` finished runs."""

    async def body() -> dict[str, Any]:
        from wakecall.models import NoopAction, TaskSpec
        from wakecall.server import open_runtime
        from wakecall.settings import Settings
        from wakecall.store import SQLiteStore

        with tempfile.TemporaryDirectory(prefix="wakecall-responsive-") as tmp:
            db = Path(tmp) / "history.db"
            settings = Settings(
                store=str(db), log_level="WARNING", max_tasks=10_000_000, tasks_per_minute=10**7
            )
            raw = SQLiteStore(db)
            await raw.open()
            from wakecall.engine import Engine

            engine = Engine(raw)
            spec = TaskSpec(name="hist", schedule="0 0 1 1 *", action=NoopAction())
            template = (await service(engine).create(OWNER, spec)).task
            await bulk_insert_tasks(raw, clone_tasks(template, tasks - 1, "hist"))
            await raw.close()
            seed_start = time.perf_counter()
            _seed_history(db, tasks, per_task, utcnow())
            seed_s = time.perf_counter() - seed_start
            watch = _PruneWatch(SQLiteStore(db))
            async with open_runtime(settings, store=watch) as rt:  # type: ignore[arg-type]

                async def release() -> None:
                    watch.release.set()

                caller, probe = await _measured(rt, release, watch.done)
                prune_s = time.perf_counter() - (watch.started or 0)
            ((left,),) = sqlite_rows(db, "SELECT count(*) FROM runs")
            ((oldest,),) = sqlite_rows(db, "SELECT min(finished_at) FROM runs")
            ((most,),) = sqlite_rows(
                db, "SELECT max(n) FROM (SELECT count(*) AS n FROM runs GROUP BY task_id)"
            )
        counts = watch.counts
        cutoff = us(utcnow() - timedelta(days=30, minutes=5))
        good = (
            counts is not None
            and most <= 100
            and oldest is not None
            and oldest >= cutoff
            and counts.runs + left == tasks * per_task
            and caller.errors == 0
        )
        return {
            **_figures(caller, probe),
            "prune_s": prune_s,
            "pruned": counts.runs if counts is not None else 0,
            "seed_s": seed_s,
            "check": check_text(
                good,
                f"{tasks * per_task} runs stored, {counts.runs if counts else '?'} pruned, "
                f"{left} left (at most {most} per task, none finished past 30 days); "
                f"{caller.errors} tool errors",
            ),
        }

    return anyio.run(body)
