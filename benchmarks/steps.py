"""The SQLite store's cost per run of each step of a burst, without the engine around it.

    python -m benchmarks.steps                  # 5,000 tasks, 5 rounds
    python -m benchmarks.steps --tasks 10000 --rounds 9

A burst's store work in three steps, each timed alone: firing the due tasks (500 per pass, as
the engine's batch, starting none), starting queued runs (64 per pass, the engine's default
concurrency) and finishing them (one `finish_runs` per 64). That is the path of a run that a
worker executes; `instant` times the other path, where the no-op runs end in the pass that
fires them (`FirePlan.instant`), 500 per pass. Each round starts from new files.
The figure of each step is its fastest round: on a shared machine the noise only ever adds
time, and the same code measured minutes apart differs by 10-20 % in the median. Use it to
compare two versions of the store, run after run (`PYTHONPATH=other/src`); the suite's burst
part measures the whole engine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

LEASE = timedelta(seconds=30)
FIRE_BATCH = 500
START_BATCH = 64


@asynccontextmanager
async def _burst_store(
    path: Path, tasks: int, instant: bool
) -> AsyncIterator[tuple[Any, Any, datetime]]:
    """A SQLite store at `path` holding `tasks` one-shot no-op tasks due at one instant,
    seeded as the burst part seeds them, the engine's planner for them at that instant (with
    `instant`, their runs end as they are fired), and the instant."""
    from benchmarks.burst import engine_config, seed_burst
    from wakecall.engine import Engine
    from wakecall.engine.policies import plan_fires
    from wakecall.engine.scheduler import schedule_of
    from wakecall.store import Instant
    from wakecall.store.sqlite import SQLiteStore

    store = SQLiteStore(path)
    await store.open()
    try:
        config = engine_config(None, None)
        due = datetime.now(UTC) + timedelta(days=1)
        # The engine is not started: its task service only validates and stores the first task.
        await seed_burst(store, Engine(store, config=config), tasks, due)
        ends = Instant(None) if instant else None

        def plan(item: Any) -> Any:
            return plan_fires(item, schedule_of(item.task), due, config, instant=ends)

        yield store, plan, due
    finally:
        await store.close()


async def _fire_all(store: Any, plan: Any, due: datetime) -> tuple[float, int]:
    """Seconds spent firing every task due at `due`, `FIRE_BATCH` per pass, starting none, and
    how many runs ended as they were fired."""
    spent, settled = 0.0, 0
    while True:
        began = time.perf_counter()
        done = await store.fire_and_start(
            "n1", due, limit=FIRE_BATCH, lease=LEASE, plan=plan, start_limit=0
        )
        spent += time.perf_counter() - began
        settled += len(done.fired.settled)
        if done.claimed == 0:
            return spent, settled


async def one_round(tasks: int, directory: Path) -> dict[str, float]:
    """Seconds spent in each step for `tasks` tasks: fire, start and finish for runs that go
    through workers, and the instant path on a second store."""
    from wakecall.models import AttemptStatus
    from wakecall.store import RunOutcome

    spent = {"fire": 0.0, "start": 0.0, "finish": 0.0}
    async with _burst_store(directory / "steps.db", tasks, instant=False) as (store, plan, due):
        spent["fire"], _ = await _fire_all(store, plan, due)
        finished_at = due + timedelta(milliseconds=1)
        left = tasks
        while left > 0:
            began = time.perf_counter()
            started = await store.start_due_runs("n1", due, START_BATCH, LEASE)
            spent["start"] += time.perf_counter() - began
            if not started:
                raise RuntimeError(f"{left} runs were never started")
            outcomes = [
                RunOutcome(run.id, AttemptStatus.SUCCESS, finished_at, duration_ms=1)
                for run, _ in started
            ]
            began = time.perf_counter()
            written, events = await store.finish_runs("n1", outcomes)
            spent["finish"] += time.perf_counter() - began
            if len(written) != len(started) or len(events) != len(started):
                raise RuntimeError("finish_runs did not write every run and its event")
            left -= len(started)
    async with _burst_store(directory / "instant.db", tasks, instant=True) as (store, plan, due):
        spent["instant"], settled = await _fire_all(store, plan, due)
        if settled != tasks:
            raise RuntimeError(f"{settled} of {tasks} runs ended as they were fired")
    return spent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.steps", description=__doc__)
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    rounds = []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as directory:
            rounds.append(asyncio.run(one_round(args.tasks, Path(directory))))
    per_run = {
        step: round(min(r[step] for r in rounds) / args.tasks * 1e6, 1) for step in rounds[0]
    }
    total = round(min(r["fire"] + r["start"] + r["finish"] for r in rounds) / args.tasks * 1e6, 1)
    import wakecall

    print(
        json.dumps(
            {
                "code": str(Path(wakecall.__file__).parent),
                "tasks": args.tasks,
                "rounds": args.rounds,
                "us_per_run": {**per_run, "fire+start+finish": total},
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
