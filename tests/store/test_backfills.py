"""The contract of `Store.backfill_runs`, over every backend: runs for past slots, once per slot
among backfill runs (concurrent calls included), with their own overlap at claim time."""

from __future__ import annotations

from datetime import datetime, timedelta

import anyio
import pytest
from tests.store.test_conformance import fire_once

from support.records import LEASE, T0, add_task, make_task
from wakecall.errors import TaskNotFound
from wakecall.models import AttemptStatus, BackfillOverlap, Overlap, RunStatus, Task, Trigger
from wakecall.store import RunOutcome, Store
from wakecall.store.backfills import Backfill

NOW = T0 + timedelta(days=1)
SLOTS = [T0 + timedelta(minutes=m) for m in range(5)]


async def a_task(store: Store, **changes: object) -> Task:
    task, _ = await add_task(store, make_task(**changes))
    return task


def backfill(task: Task, slots: list[datetime] = SLOTS, **how: object) -> Backfill:
    return Backfill(task.id, slots, **how)  # type: ignore[arg-type]


async def test_a_backfill_queues_one_run_per_slot_due_now(store: Store) -> None:
    task = await a_task(store)
    done = await store.backfill_runs("alice", backfill(task), NOW)
    assert [r.scheduled_for for r in done.runs] == SLOTS
    assert done.existing == []
    for run in done.runs:
        assert (run.trigger, run.status, run.due_at) == (Trigger.BACKFILL, RunStatus.QUEUED, NOW)
    stored = await store.list_runs("alice", task_id=task.id, limit=100)
    assert sorted(r.scheduled_for for r in stored if r.scheduled_for) == SLOTS
    assert all(r.trigger == Trigger.BACKFILL for r in stored)
    assert (await store.get_task("alice", task.id)).run_count == 0  # backfills do not count


async def test_a_second_backfill_of_the_same_slots_writes_nothing(store: Store) -> None:
    task = await a_task(store)
    await store.backfill_runs("alice", backfill(task, SLOTS[:3]), NOW)
    again = await store.backfill_runs("alice", backfill(task), NOW + timedelta(seconds=1))
    assert [r.scheduled_for for r in again.runs] == SLOTS[3:]
    assert again.existing == SLOTS[:3]
    assert len(await store.list_runs("alice", task_id=task.id, limit=100)) == 5


async def test_concurrent_backfills_write_each_slot_once(store: Store) -> None:
    task = await a_task(store)
    written: list[int] = []

    async def one() -> None:
        done = await store.backfill_runs("alice", backfill(task), NOW)
        written.append(len(done.runs))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(one)
    assert sum(written) == len(SLOTS)
    runs = await store.list_runs("alice", task_id=task.id, limit=100)
    assert sorted(r.scheduled_for for r in runs if r.scheduled_for) == SLOTS


async def test_a_slot_the_schedule_ran_can_be_backfilled_once(store: Store) -> None:
    task = await a_task(store)
    scheduled = await fire_once(store, task, T0)
    done = await store.backfill_runs("alice", backfill(task, [T0]), NOW)
    assert [r.scheduled_for for r in done.runs] == [T0]
    assert done.runs[0].id != scheduled


async def test_another_owners_task_is_unknown_and_nothing_is_written(store: Store) -> None:
    task = await a_task(store)
    with pytest.raises(TaskNotFound):
        await store.backfill_runs("mallory", backfill(task), NOW)
    assert await store.list_runs("alice", task_id=task.id) == []


async def test_a_dry_run_answers_without_writing(store: Store) -> None:
    task = await a_task(store)
    await store.backfill_runs("alice", backfill(task, SLOTS[:2]), NOW)
    preview = await store.backfill_runs("alice", backfill(task, dry_run=True), NOW)
    assert [r.scheduled_for for r in preview.runs] == SLOTS[2:]
    assert preview.existing == SLOTS[:2]
    assert len(await store.list_runs("alice", task_id=task.id, limit=100)) == 2


async def test_skip_queues_the_first_slot_and_skips_the_others(store: Store) -> None:
    task = await a_task(store)
    done = await store.backfill_runs("alice", backfill(task, overlap=BackfillOverlap.SKIP), NOW)
    assert [r.status for r in done.runs] == [RunStatus.QUEUED] + [RunStatus.SKIPPED] * 4
    assert done.runs[1].error_message and "unfinished" in done.runs[1].error_message
    # The task is busy now (its first backfill run is queued): every new slot is skipped.
    later = [T0 + timedelta(minutes=10)]
    busy = await store.backfill_runs(
        "alice", backfill(task, later, overlap=BackfillOverlap.SKIP), NOW
    )
    assert [r.status for r in busy.runs] == [RunStatus.SKIPPED]


async def test_queue_starts_backfill_runs_one_at_a_time_in_slot_order(store: Store) -> None:
    task = await a_task(store, overlap=Overlap.ALLOW)  # the task's own overlap does not apply
    done = await store.backfill_runs("alice", backfill(task), NOW)
    started: list[str] = []
    for step in range(len(SLOTS)):
        at = NOW + timedelta(seconds=step + 1)
        claimed = await store.start_due_runs("n1", at, 10, LEASE)
        assert len(claimed) == 1, "one backfill run at a time"
        run = claimed[0][0]
        assert await store.start_due_runs("n1", at, 10, LEASE) == []  # none while it runs
        started.append(run.id)
        await _finish(store, run.id, at)
    assert started == [r.id for r in done.runs]


async def test_allow_starts_backfill_runs_side_by_side(store: Store) -> None:
    task = await a_task(store, overlap=Overlap.SKIP)  # the task's own overlap does not apply
    done = await store.backfill_runs("alice", backfill(task, overlap=BackfillOverlap.ALLOW), NOW)
    claimed = await store.start_due_runs("n1", NOW, 10, LEASE)
    assert [r.id for r, _ in claimed] == [r.id for r in done.runs]


async def _finish(store: Store, run_id: str, at: datetime) -> None:
    runs, _ = await store.finish_runs(
        "n1", [RunOutcome(run_id, AttemptStatus.SUCCESS, at, duration_ms=1)]
    )
    assert [r.id for r in runs] == [run_id]
