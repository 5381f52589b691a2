"""Part 2, lateness: T interval tasks, each every second, their starts spread evenly over the
second (T fires per second in all), for D seconds. Lateness is the instant the action actually
starts minus its nominal fire time; fires in the window that never ran are counted.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

from benchmarks.burst import OWNER, aps_scheduler, aps_seed, engine_config
from benchmarks.common import POSTGRES_ENV, TimedStore, check_text, service, summary_ms, utcnow

EVERY_S = 1.0


class StampingNoop:
    """wakecall's no-op action, noting when each attempt actually starts."""

    def __init__(self) -> None:
        self.starts: list[tuple[str, datetime, float]] = []  # task id, nominal fire, lateness

    async def execute(self, ctx: Any) -> Any:
        now = utcnow()
        nominal = ctx.run.scheduled_for
        if nominal is not None:
            self.starts.append((ctx.task.id, nominal, (now - nominal).total_seconds()))
        return None


def _summarize(
    lateness: list[float], executed: dict[tuple[str, datetime], int], expected: int
) -> dict[str, Any]:
    runs = sum(executed.values())
    distinct = len(executed)
    never = expected - distinct
    dupes = runs - distinct
    return {
        **summary_ms(lateness),
        "runs": runs,
        "never_ran": never,
        "duplicates": dupes,
        "expected": expected,
    }


def wakecall_lateness(
    tasks: int = 1000,
    duration_s: float = 20,
    store: str = "sqlite",
    concurrency: int | None = None,
    batch_size: int | None = None,
    grace_s: float = 5.0,
    profile: str | None = None,
) -> dict[str, Any]:
    """wakecall with a SystemClock on a SQLite file (or PostgreSQL, fresh schema)."""

    async def body(tmp: str) -> dict[str, Any]:
        from wakecall.engine import Engine
        from wakecall.models import NoopAction, TaskSpec

        raw: Any
        if store == "sqlite":
            from wakecall.store import SQLiteStore

            raw = SQLiteStore(Path(tmp) / "lateness.db")
        else:
            from wakecall.store.postgres import PostgresStore

            url = os.environ.get(POSTGRES_ENV)
            if not url:
                raise RuntimeError(f"{POSTGRES_ENV} is not set")
            raw = PostgresStore(url, schema=f"bench_{os.getpid()}_{secrets.token_hex(3)}")
        await raw.open()
        target = TimedStore(raw) if profile else raw
        stamps = StampingNoop()
        try:
            engine = Engine(
                target,
                config=engine_config(concurrency, batch_size),
                executors={"noop": stamps},
            )
            start = utcnow() + timedelta(seconds=2 + tasks * 0.003)
            spacing = EVERY_S / tasks
            for i in range(tasks):
                anchor = start + timedelta(seconds=i * spacing)
                await service(engine).create(
                    OWNER,
                    TaskSpec(
                        name=f"tick-{i}",
                        schedule={"type": "interval", "every": "1s", "start": anchor.isoformat()},
                        action=NoopAction(),
                    ),
                )
            if utcnow() > start:
                raise RuntimeError("creating the tasks overran the start; lengthen the lead")
            end = start + timedelta(seconds=duration_s)
            expected = tasks * int(duration_s / EVERY_S)
            profiler = None
            if profile:
                from benchmarks.profiling import Profiler

                profiler = Profiler(profile, raw)
                profiler.start()
            async with engine:
                await anyio.sleep((end - utcnow()).total_seconds())
                with anyio.move_on_after(grace_s):
                    while sum(1 for s in stamps.starts if s[1] < end) < expected:  # noqa: ASYNC110
                        await anyio.sleep(0.05)
            report = profiler.stop() if profiler else None
            in_window = [s for s in stamps.starts if start <= s[1] < end]
            executed: dict[tuple[str, datetime], int] = {}
            for task_id, nominal, _ in in_window:
                executed[(task_id, nominal)] = executed.get((task_id, nominal), 0) + 1
            figures = _summarize([s[2] for s in in_window], executed, expected)
            statuses = await _run_statuses(raw, start, end)
        finally:
            if store != "sqlite":
                await raw.drop_schema()
            await raw.close()
        good = figures["never_ran"] == 0 and figures["duplicates"] == 0
        other = ", ".join(f"{v} {k}" for k, v in sorted(statuses.items()) if k != "success")
        figures["check"] = check_text(
            good,
            f"{figures['runs']} of {expected} fires ran, {figures['never_ran']} never ran, "
            f"{figures['duplicates']} twice; runs table: {statuses.get('success', 0)} success"
            + (f", {other}" if other else "")
            + (": each exactly once" if good else ""),
        )
        figures["concurrency"] = engine.config.concurrency
        if profile:
            figures["store_calls"] = target.report()
            figures["profile"] = report
        return figures

    with tempfile.TemporaryDirectory(prefix="wakecall-lateness-") as tmp:
        return anyio.run(body, tmp)


async def _run_statuses(store: Any, start: datetime, end: datetime) -> dict[str, int]:
    """Runs of the window by status, read back through the store."""
    counts: dict[str, int] = {}
    before: str | None = None
    while True:
        page = await store.list_runs(None, before=before, limit=1000)
        if not page:
            break
        for run in page:
            if run.scheduled_for is not None and start <= run.scheduled_for < end:
                counts[str(run.status)] = counts.get(str(run.status), 0) + 1
        before = page[-1].id
    return counts


async def aps_stamp() -> float:
    """The peer's job: returns the instant it started."""
    return time.time()


def apscheduler(
    tasks: int = 1000, duration_s: float = 20, store: str = "memory", grace_s: float = 5.0
) -> dict[str, Any]:
    """APScheduler 3 (AsyncIOScheduler, default job settings: misfire_grace_time 1s, coalesce,
    max_instances 1): interval jobs every second with start dates spread like wakecall's."""
    from apscheduler.events import (
        EVENT_JOB_ERROR,
        EVENT_JOB_EXECUTED,
        EVENT_JOB_MAX_INSTANCES,
        EVENT_JOB_MISSED,
    )

    async def body(tmp: str) -> dict[str, Any]:
        scheduler, jobstore = aps_scheduler(store, tmp, {})
        lateness: list[float] = []
        executed: dict[tuple[str, datetime], int] = {}
        counts = {"missed": 0, "max_instances": 0, "errors": 0}
        start = utcnow() + timedelta(seconds=2 + tasks * 0.001)
        end = start + timedelta(seconds=duration_s)

        def listener(event: Any) -> None:
            if event.code == EVENT_JOB_EXECUTED:
                nominal = event.scheduled_run_time
                if start <= nominal < end:
                    lateness.append(event.retval - nominal.timestamp())
                    key = (event.job_id, nominal)
                    executed[key] = executed.get(key, 0) + 1
            elif event.code == EVENT_JOB_MISSED:
                counts["missed"] += 1
            elif event.code == EVENT_JOB_MAX_INSTANCES:
                counts["max_instances"] += 1
            else:
                counts["errors"] += 1

        scheduler.add_listener(
            listener,
            EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_ERROR,
        )
        scheduler.start(paused=True)
        spacing = EVERY_S / tasks
        aps_seed(
            scheduler,
            jobstore,
            [
                {
                    "func": "benchmarks.lateness:aps_stamp",
                    "trigger": "interval",
                    "seconds": EVERY_S,
                    "start_date": start + timedelta(seconds=i * spacing),
                    "id": f"j{i}",
                }
                for i in range(tasks)
            ],
        )
        if utcnow() > start:
            raise RuntimeError("adding the jobs overran the start; lengthen the lead")
        expected = tasks * int(duration_s / EVERY_S)
        scheduler.resume()
        try:
            await asyncio.sleep((end - utcnow()).total_seconds())
            deadline = time.monotonic() + grace_s
            while len(executed) < expected and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        finally:
            scheduler.shutdown(wait=False)
        figures = _summarize(lateness, executed, expected)
        good = figures["never_ran"] == 0 and figures["duplicates"] == 0
        figures["check"] = check_text(
            good,
            f"{figures['runs']} of {expected} fires ran, {figures['never_ran']} never ran "
            f"({counts['missed']} reported missed, {counts['max_instances']} skipped at "
            f"max_instances), {figures['duplicates']} twice"
            + (": each exactly once" if good else ""),
        )
        return figures

    with tempfile.TemporaryDirectory(prefix="aps-lateness-") as tmp:
        return asyncio.run(body(tmp))
