"""The SQLite prune's cost follows the history it trims, not the number of tasks: a store of
thousands of tasks without runs is trimmed with a handful of statements. Its slices make way
for tool calls."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from support.records import LEASE, T0, make_task
from wakecall.ids import new_id
from wakecall.models import AttemptStatus, Overlap, RunStatus, Trigger
from wakecall.store import NewRun, RunOutcome, SQLiteStore
from wakecall.store.base import NewTask
from wakecall.store.sqlite.budget import BATCH_SECONDS
from wakecall.store.sqlite.pruning import _SliceEnd


async def test_the_prune_visits_only_tasks_that_have_runs(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "prune.db")
    await store.open()
    try:
        idle = [make_task() for _ in range(3_000)]
        await store.write_tasks("alice", [NewTask(t) for t in idle], T0)
        busy = make_task(overlap=Overlap.ALLOW)
        await store.write_tasks("alice", [NewTask(busy)], T0)
        finished = []
        for i in range(6):
            when = T0 + timedelta(minutes=i)
            new = NewRun(new_id("run"), None, T0, RunStatus.QUEUED, Trigger.MANUAL)
            run = await store.create_run(None, busy.id, new, T0)
            await store.claim_runs("n1", when, 10, LEASE)
            await store.start_attempts("n1", when, [run.id])
            await store.finish_runs("n1", [RunOutcome(run.id, AttemptStatus.SUCCESS, when)])
            finished.append(run.id)

        statements: list[str] = []
        store._conn.set_trace_callback(statements.append)  # type: ignore[union-attr]
        counts = await store.prune(
            T0 + timedelta(hours=1),
            runs_per_task=3,
            run_max_age=timedelta(days=30),
            event_max_age=timedelta(days=30),
        )
        store._conn.set_trace_callback(None)  # type: ignore[union-attr]
    finally:
        await store.close()
    assert counts.runs == 3
    probes = [s for s in statements if "FROM runs WHERE task_id" in s]
    assert len(probes) <= 10, probes[:20]  # not one per task: 3,001 tasks
    assert len(statements) < 100


def test_a_prune_slice_ends_early_for_a_waiting_call_once_it_did_a_quarter_of_its_budget() -> None:
    now = [10.0]
    waiting = [False]
    ended = _SliceEnd(lambda: waiting[0], clock=lambda: now[0])
    assert not ended()
    waiting[0] = True
    assert not ended()  # a call waits, but the slice has not done its share yet
    now[0] += BATCH_SECONDS / 4
    assert ended()
    waiting[0] = False
    assert not ended()
    now[0] += BATCH_SECONDS
    assert ended()  # its budget spent, whoever waits
