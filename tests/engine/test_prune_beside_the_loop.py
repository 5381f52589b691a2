"""History is pruned beside the engine's loop: a prune that outlasts its period neither makes
the loop spin nor starts a second prune, and the engine is idle only once it has ended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

from wakecall.engine import Engine, EngineConfig
from wakecall.store.base import PruneCounts
from wakecall.store.sqlite import SQLiteStore
from wakecall.testing import FakeClock, run_until_idle

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


class SlowPruneStore(SQLiteStore):
    """A real SQLite store whose prunes wait for `release()`, as a prune of a long history
    outlasts many passes of the loop."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.prunes: list[datetime] = []
        self.gate = anyio.Event()

    async def prune(self, now: datetime, **limits: Any) -> PruneCounts:
        self.prunes.append(now)
        await self.gate.wait()
        return await super().prune(now, **limits)

    def release(self) -> None:
        self.gate.set()


async def test_a_prune_that_outlasts_its_period_is_not_run_twice_nor_spun_on(
    tmp_path: Path,
) -> None:
    store = SlowPruneStore(tmp_path / "w.db")
    await store.open()
    clock = FakeClock(NOW)
    config = EngineConfig(
        node_id="node-a", poll_interval=timedelta(hours=1), prune_every=timedelta(minutes=10)
    )
    try:
        with anyio.fail_after(10):
            async with Engine(store, clock=clock, config=config, executors={}) as engine:
                sleeps_until = engine.wait_until
                await sleeps_until(lambda: clock.next_deadline == NOW + timedelta(minutes=10))
                assert store.prunes == [NOW] and not engine.is_idle()  # the prune is held
                # Its period passes while it still runs: that round is skipped and the loop
                # sleeps until the next one (a deadline left behind would make it spin).
                clock.set(NOW + timedelta(minutes=10))
                await sleeps_until(lambda: clock.next_deadline == NOW + timedelta(minutes=20))
                assert store.prunes == [NOW]
                store.release()
                await run_until_idle(engine)
                clock.set(NOW + timedelta(minutes=20))
                await run_until_idle(engine)
                assert store.prunes == [NOW, NOW + timedelta(minutes=20)]
    finally:
        await store.close()
