"""Only a wakeup's event said it was late: a task whose fire came due while no server ran (a
stdio host starts one per session) ran at the next start, and its `task.run.completed` said
nothing of when it should have run. Now every run event carries `late`: how late its fire was
recorded and why (`catchup`), or null when on time; a missed run did not run, so it has none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio

from wakecall.engine import Engine, EngineConfig
from wakecall.models import CatchUp, EventType, NoopAction, TaskSpec
from wakecall.store import SQLiteStore
from wakecall.testing import FakeClock, advance, run_until_idle, service_for

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


async def test_a_run_caught_up_after_downtime_says_how_late_it_came() -> None:
    store = SQLiteStore(":memory:")
    await store.open()
    clock = FakeClock(START)
    config = EngineConfig(node_id="n1", poll_interval=timedelta(hours=1))
    try:
        with anyio.fail_after(20):
            async with Engine(store, clock=clock, config=config) as engine:
                await run_until_idle(engine)
                service = service_for(engine)
                on_time = await service.create(
                    "alice", TaskSpec(name="on time", schedule="0 * * * *", action=NoopAction())
                )
                await advance(engine, clock, timedelta(hours=1))
            # No server runs for 30 minutes past the next fire, nor 2 h past one with a short
            # catch-up window.
            clock.advance(timedelta(minutes=30))
            async with Engine(store, clock=clock, config=config) as engine:
                late = await service_for(engine).create(
                    "alice",
                    TaskSpec(
                        name="short window",
                        schedule="in 1m",
                        action=NoopAction(),
                        catchup=CatchUp.LATEST,
                        catchup_window="10m",
                    ),
                )
                clock.advance(timedelta(hours=2))
                await run_until_idle(engine)
        events = await store.list_events("alice")
        of_on_time = [(e.type, e.payload["late"]) for e in events if e.task_id == on_time.task.id]
        assert of_on_time == [
            (EventType.RUN_COMPLETED, None),  # 13:00, on time
            (EventType.RUN_MISSED, None),  # 14:00, older than the catch-up window at 15:30
            # 15:00 ran at 15:30, when a server was there again.
            (EventType.RUN_COMPLETED, {"byS": 1800.0, "reason": "catchup"}),
        ]
        of_late = [(e.type, e.payload["late"]) for e in events if e.task_id == late.task.id]
        assert of_late == [(EventType.RUN_MISSED, None)]
    finally:
        await store.close()
