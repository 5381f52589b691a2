"""The contract of `Store`, method by method, run against every backend (see conftest)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import pytest

from support.records import LEASE, T0, add_task, count_tasks, delete_task, make_task, update_task
from wakecall.errors import RunNotFound, TaskNotFound
from wakecall.ids import new_id
from wakecall.models import (
    AttemptStatus,
    DeliveryStatus,
    EventType,
    Overlap,
    RetryPolicy,
    RunStatus,
    Task,
    TaskStatus,
    Trigger,
)
from wakecall.store import (
    DueTask,
    FirePlan,
    NewEvent,
    NewRun,
    PassResult,
    RunOutcome,
    Store,
    TaskEnd,
    Upcoming,
)
from wakecall.store.base import DeliveryOutcome, Instant, fire_and_start_in_steps


def queued(fire: datetime | None = T0, **changes: Any) -> NewRun:
    fields: dict[str, Any] = {
        "id": new_id("run"),
        "scheduled_for": fire,
        "due_at": fire or T0,
        "status": RunStatus.QUEUED,
        "trigger": Trigger.SCHEDULE,
    }
    fields.update(changes)
    return NewRun(**fields)


async def fire_once(store: Store, task: Task, fire: datetime = T0, node: str = "n1") -> str:
    """Claim the task and record one queued run for `fire`; returns the run id."""
    due = await store.claim_due_tasks(node, fire, 10, LEASE)
    assert task.id in [d.task.id for d in due]
    run = queued(fire)
    result = await store.record_fires(
        node,
        fire,
        [FirePlan(task.id, [run], fire + timedelta(minutes=1), fire)],
    )
    assert [r.id for r in result.runs] == [run.id]
    return run.id


async def one_pass(
    store: Store, plan: Callable[[DueTask], FirePlan | None], *, start_limit: int = 0
) -> PassResult:
    """One `fire_and_start` at T0 by node n1, of up to 10 due tasks."""
    return await store.fire_and_start(
        "n1", T0, limit=10, lease=LEASE, plan=plan, start_limit=start_limit
    )


async def start(store: Store, run_id: str, now: datetime = T0, node: str = "n1") -> None:
    claimed = await store.claim_runs(node, now, 10, LEASE)
    assert run_id in [r.id for r in claimed]
    started = await store.start_attempts(node, now, [run_id])
    assert [r.id for r in started] == [run_id]


# --- life cycle ---------------------------------------------------------------------------


async def test_open_twice_is_harmless_and_keeps_data(store: Store) -> None:
    task = make_task()
    await add_task(store, task)
    await store.open()
    assert (await store.get_task("alice", task.id)).id == task.id


# --- tasks --------------------------------------------------------------------------------


async def test_create_then_get_returns_every_field(store: Store) -> None:
    task = make_task(
        max_runs=5,
        expires_at=T0 + timedelta(days=2),
        callback_url="https://example.com/cb",
        idempotency_key="k1",
        timeout_s=12.5,
    )
    created, fresh = await add_task(store, task)
    assert fresh and created == task
    assert await store.get_task("alice", task.id) == task
    assert await store.get_task(None, task.id) == task


async def test_another_owners_task_reads_as_unknown(store: Store) -> None:
    task = make_task()
    await add_task(store, task)
    with pytest.raises(TaskNotFound, match=task.id):
        await store.get_task("mallory", task.id)
    with pytest.raises(TaskNotFound):
        await update_task(store, "mallory", task.id, {"name": "x"}, T0)
    with pytest.raises(TaskNotFound):
        await delete_task(store, "mallory", task.id)
    assert (await store.get_task("alice", task.id)).name == "report"


async def test_same_idempotency_key_returns_the_existing_task(store: Store) -> None:
    first = make_task(idempotency_key="once")
    await add_task(store, first)
    again, fresh = await add_task(store, make_task(idempotency_key="once", name="other"))
    assert not fresh and again.id == first.id and again.name == "report"
    other_owner, fresh = await add_task(store, make_task("bob", idempotency_key="once"))
    assert fresh and other_owner.owner == "bob"


async def test_list_tasks_filters_and_pages_in_creation_order(store: Store) -> None:
    tasks = [make_task(name=f"job {i}", metadata={"i": i, "even": i % 2 == 0}) for i in range(5)]
    for t in tasks:
        await add_task(store, t)
    await add_task(store, make_task("bob"))
    await update_task(store, "alice", tasks[1].id, {"status": TaskStatus.PAUSED}, T0)
    page1 = await store.list_tasks("alice", limit=2)
    page2 = await store.list_tasks("alice", after=page1[-1].id, limit=10)
    assert [t.id for t in page1 + page2] == [t.id for t in tasks]
    paused = await store.list_tasks("alice", status=TaskStatus.PAUSED)
    assert [t.id for t in paused] == [tasks[1].id]
    assert [t.id for t in await store.list_tasks("alice", name_contains="JOB 3")] == [tasks[3].id]
    evens = await store.list_tasks("alice", metadata={"even": True})
    assert [t.id for t in evens] == [tasks[0].id, tasks[2].id, tasks[4].id]
    assert [t.id for t in await store.list_tasks("alice", metadata={"i": 4})] == [tasks[4].id]
    assert await store.list_tasks("alice", metadata={"missing": None}) == []
    assert len(await store.list_tasks(None)) == 6
    assert await store.list_tasks("alice", kind="wakeup") == []


async def test_count_tasks_counts_the_owners_live_tasks(store: Store) -> None:
    a, b = make_task(), make_task()
    await add_task(store, a)
    await add_task(store, b)
    await add_task(store, make_task("bob"))
    await update_task(store, None, b.id, {"status": TaskStatus.EXPIRED}, T0)
    assert await count_tasks(store, "alice") == 2
    assert await count_tasks(store, "alice", active_only=True) == 1


async def test_update_task_sets_fields_and_updated_at(store: Store) -> None:
    task = make_task()
    await add_task(store, task)
    later = T0 + timedelta(hours=1)
    updated = await update_task(
        store,
        "alice",
        task.id,
        {"name": "renamed", "retry": RetryPolicy(attempts=4), "next_fire_at": later},
        later,
    )
    assert updated.name == "renamed" and updated.retry.attempts == 4
    assert updated.next_fire_at == later and updated.updated_at == later
    assert await store.get_task("alice", task.id) == updated


async def test_delete_task_removes_runs_but_keeps_events(store: Store) -> None:
    task = make_task()
    await add_task(store, task)
    run_id = await fire_once(store, task)
    await start(store, run_id)
    await store.finish_runs(
        "n1", [RunOutcome(run_id, AttemptStatus.SUCCESS, T0 + timedelta(seconds=1))]
    )
    run2 = await fire_once(store, task.replace(), T0 + timedelta(minutes=1))
    await start(store, run2, T0 + timedelta(minutes=1))
    running = await delete_task(store, "alice", task.id)
    assert running == [run2]
    with pytest.raises(TaskNotFound):
        await store.get_task("alice", task.id)
    with pytest.raises(RunNotFound):
        await store.get_run("alice", run_id)
    assert [e.run_id for e in await store.list_events("alice")] == [run_id]
    # The claimant of the deleted running run finds it gone.
    runs, events = await store.finish_runs(
        "n1", [RunOutcome(run2, AttemptStatus.SUCCESS, T0 + timedelta(minutes=2))]
    )
    assert runs == [] and events == []


async def test_next_fire_at_is_the_earliest_active_fire(store: Store) -> None:
    assert (await store.upcoming()).fire_at is None
    soon, later = make_task(next_fire_at=T0), make_task(next_fire_at=T0 + timedelta(hours=1))
    paused = make_task(next_fire_at=T0 - timedelta(hours=1), status=TaskStatus.PAUSED)
    for t in (soon, later, paused):
        await add_task(store, t)
    assert (await store.upcoming()).fire_at == T0


# --- fires --------------------------------------------------------------------------------


async def test_claim_due_tasks_claims_only_due_active_unclaimed_tasks(store: Store) -> None:
    due = make_task(next_fire_at=T0 - timedelta(seconds=1))
    exact = make_task(next_fire_at=T0)
    future = make_task(next_fire_at=T0 + timedelta(seconds=1))
    paused = make_task(next_fire_at=T0 - timedelta(minutes=1), status=TaskStatus.PAUSED)
    for t in (due, exact, future, paused):
        await add_task(store, t)
    claimed = await store.claim_due_tasks("n1", T0, 10, LEASE)
    assert [d.task.id for d in claimed] == [due.id, exact.id]
    assert all(d.task.claimed_by == "n1" for d in claimed)
    assert await store.claim_due_tasks("n2", T0, 10, LEASE) == []
    # An expired claim is claimable again: that is how a dead node's claims are reaped.
    reclaimed = await store.claim_due_tasks("n2", T0 + LEASE + timedelta(seconds=1), 10, LEASE)
    assert {d.task.id for d in reclaimed} == {due.id, exact.id, future.id}


async def test_claim_due_tasks_reaches_ahead_but_judges_claims_at_now(store: Store) -> None:
    """With `due_by`, tasks due by it are claimed too; another node's claim is taken only
    once it has expired by `now`, never because it expires within the reach."""
    claim_at = T0 - LEASE + timedelta(milliseconds=2)  # n0's claim expires 2 ms after T0
    soon = make_task(next_fire_at=T0 + timedelta(milliseconds=5))
    held = make_task(next_fire_at=claim_at - timedelta(seconds=1))
    for t in (soon, held):
        await add_task(store, t)
    (taken,) = await store.claim_due_tasks("n0", claim_at, 10, LEASE)
    assert taken.task.id == held.id
    reach = T0 + timedelta(milliseconds=10)
    claimed = await store.claim_due_tasks("n1", T0, 10, LEASE, due_by=reach)
    assert [d.task.id for d in claimed] == [soon.id]
    assert claimed[0].task.claim_expires_at == T0 + LEASE
    later = T0 + timedelta(milliseconds=3)
    (retaken,) = await store.claim_due_tasks("n1", later, 10, LEASE, due_by=reach)
    assert retaken.task.id == held.id


async def test_a_pass_in_steps_takes_no_claim_that_expires_within_its_horizon(
    store: Store,
) -> None:
    """The pass of a store without one transaction for it (PostgreSQL's) reaches to its
    horizon for due tasks, not for other nodes' claims."""
    claim_at = T0 - LEASE + timedelta(milliseconds=2)
    held = make_task(next_fire_at=claim_at - timedelta(seconds=1))
    await add_task(store, held)
    await store.claim_due_tasks("n0", claim_at, 10, LEASE)
    seen: list[str] = []

    def plan(item: DueTask) -> FirePlan | None:
        seen.append(item.task.id)
        return None

    horizon = T0 + timedelta(milliseconds=10)
    await fire_and_start_in_steps(
        store, "n1", T0, limit=10, lease=LEASE, plan=plan, start_limit=0, horizon=horizon
    )
    assert seen == []
    assert (await store.get_task(None, held.id)).claimed_by == "n0"


async def test_claim_due_tasks_respects_the_limit_earliest_first(store: Store) -> None:
    tasks = [make_task(next_fire_at=T0 - timedelta(seconds=i)) for i in range(5)]
    for t in tasks:
        await add_task(store, t)
    claimed = await store.claim_due_tasks("n1", T0, 2, LEASE)
    assert [d.task.id for d in claimed] == [tasks[4].id, tasks[3].id]


async def test_claim_due_tasks_reports_unfinished_runs(store: Store) -> None:
    task = make_task()
    await add_task(store, task)
    run_id = await fire_once(store, task)
    await start(store, run_id)
    await update_task(store, None, task.id, {"next_fire_at": T0 + timedelta(minutes=1)}, T0)
    later = T0 + timedelta(minutes=1)
    (due,) = await store.claim_due_tasks("n1", later, 10, LEASE)
    assert due.running_run_ids == (run_id,) and due.queued_runs == 0


async def test_fire_and_start_records_the_plans_then_starts_due_runs(store: Store) -> None:
    """The engine's pass: due tasks planned, their fires recorded, due runs started (the new
    ones included) up to the start limit; a task the planner gives up on is left as it was."""
    tasks = [make_task(next_fire_at=T0 - timedelta(seconds=3 - i)) for i in range(3)]
    unplannable = make_task(next_fire_at=T0 - timedelta(seconds=9))
    for t in (*tasks, unplannable):
        await add_task(store, t)
    nxt = T0 + timedelta(minutes=1)
    seen: list[str] = []
    new_runs: dict[str, NewRun] = {}

    def plan(item: DueTask) -> FirePlan | None:
        seen.append(item.task.id)
        if item.task.id == unplannable.id:
            return None
        new_runs[item.task.id] = queued(T0)
        return FirePlan(item.task.id, [new_runs[item.task.id]], nxt, T0)

    done = await one_pass(store, plan, start_limit=2)
    assert seen == [unplannable.id, *(t.id for t in tasks)]  # earliest first
    assert done.claimed == 4 and len(done.plans) == 3
    assert {r.id for r in done.fired.runs} == {r.id for r in new_runs.values()}
    assert [(run.id, task.id) for run, task in done.started] == [
        (new_runs[t.id].id, t.id) for t in tasks[:2]
    ]
    assert all(run.status == RunStatus.RUNNING and run.attempt == 1 for run, _ in done.started)
    for t in tasks:
        moved = await store.get_task(None, t.id)
        assert moved.next_fire_at == nxt and moved.claimed_by is None
    left = await store.get_task(None, unplannable.id)
    assert left.next_fire_at == unplannable.next_fire_at and left.run_count == 0
    # Nothing is due any more but the unplannable task and the third run, which is queued.
    again = await store.fire_and_start(
        "n2", T0, limit=10, lease=LEASE, plan=lambda item: None, start_limit=10
    )
    assert again.claimed == 1 and again.fired.runs == []
    assert [run.id for run, _ in again.started] == [new_runs[tasks[2].id].id]


async def test_fire_and_start_hands_out_runs_and_tasks_as_stored(store: Store) -> None:
    """A run started in the pass that fired it is stored running in its first attempt, and
    the run and task handed out are exactly what the store reads back afterwards."""
    task = make_task(max_runs=5)
    await add_task(store, task)
    nxt = T0 + timedelta(minutes=1)
    run = queued(T0)
    done = await one_pass(store, lambda item: FirePlan(item.task.id, [run], nxt, T0), start_limit=5)
    ((started, its_task),) = done.started
    assert started == await store.get_run(None, run.id)
    assert started.status == RunStatus.RUNNING and started.attempt == 1
    assert started.claimed_by == "n1" and started.lease_expires_at == T0 + LEASE
    assert started.started_at == T0
    assert its_task == await store.get_task(None, task.id)
    assert its_task.run_count == 1 and its_task.next_fire_at == nxt
    assert its_task.last_fire_at == T0 and its_task.claimed_by is None
    (attempt,) = await store.list_attempts(None, run.id)
    assert (attempt.number, attempt.status, attempt.started_at, attempt.node) == (
        1,
        AttemptStatus.RUNNING,
        T0,
        "n1",
    )


async def test_fire_and_start_starts_older_queued_runs_before_new_ones(store: Store) -> None:
    """Runs already queued and the pass's new runs are started in one due order, with the
    overlap rules: a task that does not allow overlap starts one run at a time."""
    old = make_task(overlap=Overlap.ALLOW)
    exclusive = make_task(overlap=Overlap.QUEUE, max_queued=5)
    fresh = make_task(next_fire_at=T0 - timedelta(seconds=1))
    for t in (old, exclusive, fresh):
        await add_task(store, t)
    earlier = T0 - timedelta(seconds=30)
    await store.claim_due_tasks("n1", T0, 10, LEASE)
    old_run, ex_first = queued(earlier), queued(earlier + timedelta(seconds=1))
    await store.record_fires(
        "n1",
        T0,
        [
            FirePlan(old.id, [old_run], T0, earlier),
            FirePlan(exclusive.id, [ex_first], T0, earlier),
            FirePlan(fresh.id, [], T0 - timedelta(seconds=1), None),
        ],
    )
    new_runs: dict[str, NewRun] = {}

    def plan(item: DueTask) -> FirePlan | None:
        new_runs[item.task.id] = queued(T0, due_at=item.task.next_fire_at)
        return FirePlan(item.task.id, [new_runs[item.task.id]], T0 + timedelta(minutes=1), T0)

    done = await one_pass(store, plan, start_limit=3)
    # Due order: old_run, ex_first, then the new runs (fresh's is due a second before the
    # others); the exclusive task's new run waits behind its first.
    assert [run.id for run, _ in done.started] == [
        old_run.id,
        ex_first.id,
        new_runs[fresh.id].id,
    ]
    assert (await store.get_run(None, new_runs[exclusive.id].id)).status == RunStatus.QUEUED
    for run, task in done.started:
        assert run == await store.get_run(None, run.id)
        assert task == await store.get_task(None, task.id)
    # The old task's new run starts next, the exclusive task's only once its first is done.
    later = await store.fire_and_start(
        "n1", T0, limit=10, lease=LEASE, plan=lambda item: None, start_limit=10
    )
    assert [run.id for run, _ in later.started] == [new_runs[old.id].id]


async def test_fire_and_start_reaches_to_its_horizon(store: Store) -> None:
    """With a horizon, tasks due by it are claimed and their fires recorded at `now`. A new
    run due after `now` is either started at its own instant or left queued (a store that
    cannot start ahead); one with a flow control, and a stored run due after `now`, wait."""
    soon = T0 + timedelta(milliseconds=4)
    horizon = T0 + timedelta(milliseconds=10)
    ahead = make_task(next_fire_at=soon)
    limited = make_task(next_fire_at=soon, rate_limit={"key": "k", "limit": 5, "period_s": 60.0})
    beyond = make_task(next_fire_at=T0 + timedelta(milliseconds=30))
    stored = make_task(overlap=Overlap.ALLOW, next_fire_at=T0 - timedelta(minutes=1))
    for t in (ahead, limited, beyond, stored):
        await add_task(store, t)
    stored_run = queued(soon)
    await store.claim_due_tasks("n1", T0, 10, LEASE)
    await store.record_fires("n1", T0, [FirePlan(stored.id, [stored_run], T0 + LEASE, T0)])
    new_runs: dict[str, NewRun] = {}

    def plan(item: DueTask) -> FirePlan | None:
        fire = item.task.next_fire_at
        assert fire is not None
        new_runs[item.task.id] = queued(fire)
        return FirePlan(item.task.id, [new_runs[item.task.id]], fire + timedelta(minutes=1), fire)

    done = await store.fire_and_start(
        "n1", T0, limit=10, lease=LEASE, plan=plan, start_limit=10, horizon=horizon
    )
    assert set(new_runs) == {ahead.id, limited.id}
    for task_id in new_runs:
        moved = await store.get_task(None, task_id)
        assert moved.next_fire_at == soon + timedelta(minutes=1) and moved.updated_at == T0
    assert (await store.get_task(None, beyond.id)).run_count == 0
    waiting = [new_runs[limited.id].id, stored_run.id]
    for run_id in waiting:
        assert (await store.get_run(None, run_id)).status == RunStatus.QUEUED
    mine = new_runs[ahead.id]
    run = await store.get_run(None, mine.id)
    assert run.created_at == T0
    if run.status == RunStatus.RUNNING:
        assert [r.id for r, _ in done.started] == [mine.id]
        assert run.started_at == soon and run.lease_expires_at == T0 + LEASE
        (attempt,) = await store.list_attempts(None, mine.id)
        assert attempt.started_at == soon
    else:
        assert run.status == RunStatus.QUEUED and done.started == []


async def test_fire_and_start_with_no_room_only_records(store: Store) -> None:
    task = make_task()
    await add_task(store, task)
    run = queued(T0)
    done = await one_pass(
        store, lambda item: FirePlan(item.task.id, [run], T0 + timedelta(minutes=1), T0)
    )
    assert [r.id for r in done.fired.runs] == [run.id] and done.started == []
    assert (await store.get_run(None, run.id)).status == RunStatus.QUEUED


# --- instant runs: finished as they are fired ------------------------------------------------


def _same_but_ids(a: Any, b: Any, ids: dict[str, str]) -> bool:
    """`a` equals `b` once every id of `ids` in `a` is replaced by its counterpart."""
    if isinstance(a, str):
        return ids.get(a, a) == b
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_but_ids(a[k], b[k], ids) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same_but_ids(x, y, ids) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.mark.parametrize("kind", ["task", "wakeup"])
async def test_an_instant_run_is_stored_as_if_started_and_finished_at_its_fire(
    store: Store, kind: str
) -> None:
    """A run settled at birth leaves the same run, attempt, event and callback delivery as a
    run fired, started and finished with the same output at the same instant."""
    action: dict[str, Any] = {"type": "noop"}
    output: Any = None
    if kind == "wakeup":
        action = {"type": "wakeup", "reason": "look at CI", "context": {"pr": 7}}
        output = {"reason": "look at CI", "context": {"pr": 7}}
    template = make_task(
        kind=kind, action=action, max_runs=3, callback_url="https://app.example/cb"
    )
    instant, plain = template.replace(id=new_id("tsk")), template.replace(id=new_id("tsk"))
    for t in (instant, plain):
        await add_task(store, t)
    nxt = T0 + timedelta(minutes=1)
    settled_run, plain_run = queued(T0), queued(T0)

    def plan(item: DueTask) -> FirePlan:
        if item.task.id == instant.id:
            return FirePlan(instant.id, [settled_run], nxt, T0, instant=Instant(output))
        return FirePlan(plain.id, [plain_run], nxt, T0)

    done = await one_pass(store, plan, start_limit=5)
    assert [run.id for run, _ in done.started] == [plain_run.id]  # the instant one is done
    (settled,) = done.fired.settled
    assert settled == await store.get_run(None, settled_run.id)
    assert settled in done.fired.runs
    assert (settled.status, settled.attempt, settled.duration_ms) == (RunStatus.SUCCESS, 1, 0)
    assert settled.started_at == settled.finished_at == T0 and settled.claimed_by is None
    (event,) = done.fired.events
    assert event.run_id == settled.id
    assert event.type == (EventType.WAKEUP_FIRED if kind == "wakeup" else EventType.RUN_COMPLETED)
    assert await store.list_events("alice") == [event]

    _, (plain_event,) = await store.finish_runs(
        "n1", [RunOutcome(plain_run.id, AttemptStatus.SUCCESS, T0, output=output, duration_ms=0)]
    )
    ids = {instant.id: plain.id, settled_run.id: plain_run.id}
    expected = await store.get_run(None, plain_run.id)
    assert _same_but_ids(asdict(settled), asdict(expected), ids)
    assert _same_but_ids(event.payload, plain_event.payload, ids)
    (a,), (b,) = (
        await store.list_attempts(None, settled.id),
        await store.list_attempts(None, plain_run.id),
    )
    assert _same_but_ids(asdict(a), asdict(b), ids)
    assert (a.status, a.started_at, a.finished_at, a.node) == (AttemptStatus.SUCCESS, T0, T0, "n1")
    deliveries = {d.task_id: d for d in await store.list_deliveries("alice")}
    assert deliveries.keys() == {instant.id, plain.id}
    assert _same_but_ids(
        json.loads(deliveries[instant.id].body), json.loads(deliveries[plain.id].body), ids
    )
    assert await store.get_task(None, instant.id) == (await store.get_task(None, plain.id)).replace(
        id=instant.id
    )


async def test_an_instant_plan_settles_only_its_runs_due_now_and_needs_no_slot(
    store: Store,
) -> None:
    """With no free slot, an instant plan's run due now still ends at birth; its jittered run
    due later is written queued, for a worker to run when it is due."""
    task = make_task(catchup="all")
    await add_task(store, task)
    now_run, later_run = (
        queued(T0 - timedelta(minutes=1)),
        queued(T0, due_at=T0 + timedelta(seconds=5)),
    )
    done = await one_pass(
        store,
        lambda item: FirePlan(
            task.id, [now_run, later_run], T0 + timedelta(minutes=1), T0, instant=Instant()
        ),
    )
    assert [r.id for r in done.fired.settled] == [now_run.id] and done.started == []
    assert (await store.get_run(None, now_run.id)).status == RunStatus.SUCCESS
    assert (await store.get_run(None, later_run.id)).status == RunStatus.QUEUED
    assert (await store.get_task(None, task.id)).run_count == 2
    (event,) = await store.list_events("alice")
    assert event.run_id == now_run.id


async def test_record_fires_of_an_instant_plan_ends_its_task_after_its_last_run(
    store: Store,
) -> None:
    """Through `record_fires` (claims marked), the last run of a task ended by `max_runs`:
    its event, then `task.expired`, in the same transaction; a missed run's event first."""
    task = make_task(max_runs=1)
    await add_task(store, task)
    await store.claim_due_tasks("n1", T0, 10, LEASE)
    missed = queued(T0 - timedelta(hours=2), status=RunStatus.MISSED, counts=False)
    run = queued(T0)
    result = await store.record_fires(
        "n1",
        T0,
        [
            FirePlan(
                task.id,
                [missed, run],
                None,
                T0,
                end=TaskEnd(TaskStatus.EXPIRED, "max_runs_reached"),
                instant=Instant({"ok": True}),
            )
        ],
    )
    assert [r.id for r in result.settled] == [run.id]
    assert [(e.type, e.run_id) for e in result.events] == [
        (EventType.RUN_MISSED, missed.id),
        (EventType.RUN_COMPLETED, run.id),
        (EventType.TASK_EXPIRED, None),
    ]
    assert result.events[1].payload["run"]["output"] == {"ok": True}
    assert result.events[1].payload["stats"]["remainingRuns"] == 0
    assert await store.list_events("alice") == result.events
    ended = await store.get_task(None, task.id)
    assert ended.status == TaskStatus.EXPIRED and ended.run_count == 1


async def test_an_instant_success_queues_a_run_of_each_dependent(store: Store) -> None:
    upstream = make_task(name="extract")
    dependent = make_task(name="transform", depends_on=upstream.id, next_fire_at=None)
    for t in (upstream, dependent):
        await add_task(store, t)
    run = queued(T0)
    done = await one_pass(
        store,
        lambda item: FirePlan(
            item.task.id, [run], T0 + timedelta(minutes=1), T0, instant=Instant([1])
        ),
    )
    assert [r.id for r in done.fired.settled] == [run.id]
    (chained,) = await store.list_runs(None, task_id=dependent.id)
    assert chained.status == RunStatus.QUEUED and chained.trigger == Trigger.DEPENDENCY
    assert chained.due_at == T0 and chained.input["run"]["id"] == run.id
    assert chained.input["run"]["output"] == [1]
    assert (await store.upcoming()).run_due_at == T0  # the engine looks again at once


async def test_record_fires_creates_runs_and_moves_the_task_on(store: Store) -> None:
    task = make_task(max_runs=10)
    await add_task(store, task)
    await store.claim_due_tasks("n1", T0, 10, LEASE)
    nxt = T0 + timedelta(minutes=1)
    runs = [queued(T0), queued(T0 - timedelta(minutes=5), status=RunStatus.MISSED, counts=False)]
    result = await store.record_fires("n1", T0, [FirePlan(task.id, runs, nxt, T0)])
    assert {r.id for r in result.runs} == {r.id for r in runs}
    assert result.lost_task_ids == []
    moved = await store.get_task("alice", task.id)
    assert moved.next_fire_at == nxt and moved.last_fire_at == T0 and moved.run_count == 1
    assert moved.claimed_by is None
    missed = await store.get_run("alice", runs[1].id)
    assert missed.status == RunStatus.MISSED and missed.finished_at == T0
    assert [e.type for e in result.events] == [EventType.RUN_MISSED]


async def test_a_slot_never_yields_two_runs(store: Store) -> None:
    task = make_task()
    await add_task(store, task)
    first = await fire_once(store, task)
    await update_task(store, None, task.id, {"next_fire_at": T0}, T0)
    await store.claim_due_tasks("n2", T0, 10, LEASE)
    again = await store.record_fires("n2", T0, [FirePlan(task.id, [queued(T0)], None, T0)])
    assert again.runs == []
    assert [r.id for r in await store.list_runs("alice", task_id=task.id)] == [first]
    assert (await store.get_task(None, task.id)).run_count == 1


async def test_record_fires_refuses_a_plan_whose_claim_was_lost(store: Store) -> None:
    task = make_task()
    await add_task(store, task)
    await store.claim_due_tasks("n1", T0, 10, LEASE)
    late = T0 + LEASE + timedelta(seconds=1)
    await store.claim_due_tasks("n2", late, 10, LEASE)
    result = await store.record_fires("n1", late, [FirePlan(task.id, [queued(T0)], None, T0)])
    assert result.lost_task_ids == [task.id] and result.runs == []
    unchanged = await store.get_task(None, task.id)
    assert unchanged.next_fire_at == T0 and unchanged.claimed_by == "n2"


@pytest.mark.parametrize("missed", [False, True], ids=["plain", "with an event"])
async def test_a_task_paused_after_its_claim_is_not_fired_and_its_claim_is_let_go(
    store: Store, missed: bool
) -> None:
    task = make_task()
    await add_task(store, task)
    await store.claim_due_tasks("n1", T0, 10, LEASE)
    pause = {"status": TaskStatus.PAUSED, "pause_note": "hold on", "next_fire_at": None}
    await update_task(store, "alice", task.id, pause, T0)
    runs = [queued(T0)]
    if missed:  # a plan that appends an event takes the other way in
        runs.append(queued(T0 - timedelta(minutes=5), status=RunStatus.MISSED, counts=False))
    nxt = T0 + timedelta(minutes=1)
    result = await store.record_fires("n1", T0, [FirePlan(task.id, runs, nxt, T0)])
    assert result.runs == [] and result.events == [] and result.lost_task_ids == [task.id]
    assert await store.list_runs("alice", task_id=task.id) == []
    paused = await store.get_task("alice", task.id)
    assert paused.status == TaskStatus.PAUSED and paused.next_fire_at is None
    assert paused.claimed_by is None and paused.run_count == 0


async def test_record_fires_ending_a_task_announces_after_its_last_run(store: Store) -> None:
    task = make_task(max_runs=1)
    await add_task(store, task)
    await store.claim_due_tasks("n1", T0, 10, LEASE)
    run = queued(T0)
    result = await store.record_fires(
        "n1",
        T0,
        [FirePlan(task.id, [run], None, T0, end=TaskEnd(TaskStatus.EXPIRED, "max_runs_reached"))],
    )
    assert result.events == []  # the last run has not finished yet
    ended = await store.get_task(None, task.id)
    assert ended.status == TaskStatus.EXPIRED and ended.end_reason == "max_runs_reached"
    await start(store, run.id)
    _, events = await store.finish_runs(
        "n1", [RunOutcome(run.id, AttemptStatus.SUCCESS, T0 + timedelta(seconds=2))]
    )
    assert [e.type for e in events] == [EventType.RUN_COMPLETED, EventType.TASK_EXPIRED]
    assert events[1].payload["reason"] == "max_runs_reached"
    assert events[1].payload["stats"]["remainingRuns"] == 0


async def test_record_fires_ending_an_idle_task_announces_at_once(store: Store) -> None:
    task = make_task(expires_at=T0 + timedelta(seconds=30))
    await add_task(store, task)
    await store.claim_due_tasks("n1", T0, 10, LEASE)
    result = await store.record_fires(
        "n1",
        T0,
        [
            FirePlan(
                task.id,
                [],
                None,
                T0,
                end=TaskEnd(TaskStatus.EXPIRED, "expired_at_reached"),
                events=[NewEvent(EventType.RUN_MISSED, task.id, None, {"note": "x"})],
            )
        ],
    )
    assert [e.type for e in result.events] == [EventType.RUN_MISSED, EventType.TASK_EXPIRED]


async def test_record_fires_flags_runs_to_cancel(store: Store) -> None:
    task = make_task(overlap=Overlap.CANCEL_PREVIOUS)
    await add_task(store, task)
    old = await fire_once(store, task)
    await start(store, old)
    later = T0 + timedelta(minutes=1)
    await update_task(store, None, task.id, {"next_fire_at": later}, T0)
    await store.claim_due_tasks("n1", later, 10, LEASE)
    await store.record_fires(
        "n1", later, [FirePlan(task.id, [queued(later)], None, later, cancel_run_ids=[old])]
    )
    held, cancel = await store.extend_leases("n1", [old], later + LEASE)
    assert held == {old} and cancel == {old}


async def test_release_tasks_gives_claims_back(store: Store) -> None:
    task = make_task()
    await add_task(store, task)
    await store.claim_due_tasks("n1", T0, 10, LEASE)
    await store.release_tasks("n2", [task.id])  # not n2's: no effect
    assert await store.claim_due_tasks("n2", T0, 10, LEASE) == []
    await store.release_tasks("n1", [task.id])
    assert len(await store.claim_due_tasks("n2", T0, 10, LEASE)) == 1


# --- runs ---------------------------------------------------------------------------------


async def test_create_run_adds_a_manual_run(store: Store) -> None:
    task = make_task()
    await add_task(store, task)
    run = await store.create_run(
        "alice", task.id, queued(None, trigger=Trigger.MANUAL, counts=False), T0
    )
    assert run.trigger == Trigger.MANUAL and run.scheduled_for is None
    # Manual runs have no fire, so several may exist side by side.
    await store.create_run("alice", task.id, queued(None, trigger=Trigger.MANUAL), T0)
    assert len(await store.list_runs("alice", task_id=task.id)) == 2
    with pytest.raises(TaskNotFound):
        await store.create_run("bob", task.id, queued(None), T0)


async def test_claim_runs_takes_due_runs_once(store: Store) -> None:
    task = make_task(overlap=Overlap.ALLOW)
    await add_task(store, task)
    due = await store.create_run(None, task.id, queued(None, due_at=T0), T0)
    await store.create_run(None, task.id, queued(None, due_at=T0 + timedelta(seconds=5)), T0)
    claimed = await store.claim_runs("n1", T0, 10, LEASE)
    assert [r.id for r in claimed] == [due.id]
    assert claimed[0].claimed_by == "n1" and claimed[0].lease_expires_at == T0 + LEASE
    assert await store.claim_runs("n2", T0, 10, LEASE) == []
    assert (await store.upcoming()).run_due_at == T0  # still queued until started


async def test_claim_runs_serializes_a_task_that_does_not_allow_overlap(store: Store) -> None:
    exclusive = make_task(overlap=Overlap.QUEUE)
    shared = make_task(overlap=Overlap.ALLOW)
    await add_task(store, exclusive)
    await add_task(store, shared)
    for t in (exclusive, shared):
        for _ in range(2):
            await store.create_run(None, t.id, queued(None), T0)
    claimed = await store.claim_runs("n1", T0, 10, LEASE)
    by_task = [r.task_id for r in claimed]
    assert by_task.count(exclusive.id) == 1 and by_task.count(shared.id) == 2
    await store.start_attempts("n1", T0, [r.id for r in claimed])
    assert await store.claim_runs("n2", T0, 10, LEASE) == []


async def test_start_attempts_only_for_the_claimant(store: Store) -> None:
    task = make_task()
    await add_task(store, task)
    run_id = await fire_once(store, task)
    await store.claim_runs("n1", T0, 10, LEASE)
    assert await store.start_attempts("n2", T0, [run_id]) == []
    (run,) = await store.start_attempts("n1", T0, [run_id])
    assert run.status == RunStatus.RUNNING and run.attempt == 1 and run.started_at == T0
    (attempt,) = await store.list_attempts("alice", run_id)
    assert attempt.number == 1 and attempt.status == AttemptStatus.RUNNING and attempt.node == "n1"


async def test_start_due_runs_claims_and_starts_with_the_tasks_in_one_step(store: Store) -> None:
    exclusive = make_task(overlap=Overlap.QUEUE, name="exclusive")
    shared = make_task(overlap=Overlap.ALLOW, name="shared")
    for t in (exclusive, shared):
        await add_task(store, t)
        for _ in range(2):
            await store.create_run(None, t.id, queued(None), T0)
    await store.create_run(None, shared.id, queued(None, due_at=T0 + timedelta(hours=1)), T0)
    started = await store.start_due_runs("n1", T0, 10, LEASE)
    by_task = [run.task_id for run, _ in started]
    # Only due runs, one of the exclusive task's: the same choice as claim_runs.
    assert by_task.count(exclusive.id) == 1 and by_task.count(shared.id) == 2
    for run, task in started:
        assert run.status == RunStatus.RUNNING and run.attempt == 1 and run.started_at == T0
        assert run.claimed_by == "n1" and run.lease_expires_at == T0 + LEASE
        assert task == (exclusive if run.task_id == exclusive.id else shared)
        (attempt,) = await store.list_attempts(None, run.id)
        assert attempt.status == AttemptStatus.RUNNING and attempt.node == "n1"
    # Nothing left for another node, and a limit is a limit.
    assert await store.start_due_runs("n2", T0, 10, LEASE) == []
    await store.create_run(None, shared.id, queued(None), T0)
    await store.create_run(None, shared.id, queued(None), T0)
    assert len(await store.start_due_runs("n2", T0, 1, LEASE)) == 1


async def test_upcoming_gives_the_three_next_instants_in_one_read(store: Store) -> None:
    assert await store.upcoming() == Upcoming(None, None, None)
    task = make_task(next_fire_at=T0 + timedelta(minutes=5))
    await add_task(store, task)
    await store.create_run(None, task.id, queued(None, due_at=T0 + timedelta(minutes=1)), T0)
    running = await store.create_run(None, task.id, queued(None, due_at=T0), T0)
    await store.start_due_runs("n1", T0, 1, LEASE)
    upcoming = await store.upcoming()
    assert upcoming == Upcoming(T0 + timedelta(minutes=5), T0 + timedelta(minutes=1), T0 + LEASE)
    assert (await store.get_run(None, running.id)).status == RunStatus.RUNNING


async def test_backlog_counts_what_is_due_and_not_yet_taken(store: Store) -> None:
    assert await store.backlog(T0) == (0, 0)
    due = make_task(next_fire_at=T0)
    later = make_task(next_fire_at=T0 + timedelta(minutes=1))
    paused = make_task(next_fire_at=T0, status=TaskStatus.PAUSED)
    for t in (due, later, paused):
        await add_task(store, t)
    await store.create_run(None, later.id, queued(None, due_at=T0), T0)
    await store.create_run(None, later.id, queued(None, due_at=T0 + timedelta(hours=1)), T0)
    assert await store.backlog(T0) == (1, 1)
    assert await store.backlog(T0 + timedelta(hours=2)) == (2, 2)


async def test_append_events_goes_to_each_tasks_owner_with_its_callbacks(store: Store) -> None:
    mine = make_task("alice", callback_url="https://example.com/cb")
    theirs = make_task("bob")
    await add_task(store, mine)
    await add_task(store, theirs)
    written = await store.append_events(
        T0,
        [
            NewEvent(EventType.RUN_STALE, mine.id, "run_1", {"why": "no beat"}),
            NewEvent(EventType.RUN_STALE, "tsk_gone", None, {}),  # dropped
            NewEvent(EventType.TASK_EXPIRED, theirs.id, None, {"reason": "x"}),
            NewEvent(EventType.TASK_EXPIRED, mine.id, None, {"reason": "y"}),
        ],
    )
    assert [(e.owner, e.type, e.task_id) for e in written] == [
        ("alice", EventType.RUN_STALE, mine.id),
        ("bob", EventType.TASK_EXPIRED, theirs.id),
        ("alice", EventType.TASK_EXPIRED, mine.id),
    ]
    # Each owner's cursors count its own events only.
    assert [e.cursor for e in written] == [1, 1, 2]
    assert [e.payload for e in await store.list_events("alice")] == [
        {"why": "no beat"},
        {"reason": "y"},
    ]
    # Only the callback event of the task with a callback URL made a delivery.
    (delivery,) = await store.list_deliveries(None)
    assert delivery.task_id == mine.id and delivery.event_type == EventType.TASK_EXPIRED


async def test_extend_leases_reports_what_is_still_held(store: Store) -> None:
    task = make_task()
    await add_task(store, task)
    run_id = await fire_once(store, task)
    await start(store, run_id)
    held, cancel = await store.extend_leases("n1", [run_id, "run_unknown"], T0 + 2 * LEASE)
    assert held == {run_id} and cancel == set()
    assert (await store.get_run(None, run_id)).lease_expires_at == T0 + 2 * LEASE
    assert await store.extend_leases("n2", [run_id], T0 + 3 * LEASE) == (set(), set())
    await store.request_cancel("bob", [run_id])  # not bob's: no effect
    assert (await store.extend_leases("n1", [run_id], T0 + LEASE))[1] == set()
    await store.request_cancel("alice", [run_id])
    assert (await store.extend_leases("n1", [run_id], T0 + LEASE))[1] == {run_id}


async def test_finish_runs_writes_the_final_state_and_its_event_together(store: Store) -> None:
    task = make_task()
    await add_task(store, task)
    run_id = await fire_once(store, task)
    await start(store, run_id)
    end = T0 + timedelta(seconds=3)
    runs, events = await store.finish_runs(
        "n1",
        [RunOutcome(run_id, AttemptStatus.SUCCESS, end, output={"rows": 3}, duration_ms=2500)],
    )
    (run,) = runs
    assert run.status == RunStatus.SUCCESS and run.output == {"rows": 3}
    assert run.duration_ms == 2500 and run.finished_at == end and run.claimed_by is None
    assert await store.get_run("alice", run_id) == run
    (event,) = events
    assert event.type == EventType.RUN_COMPLETED and event.run_id == run_id
    assert event.payload["run"]["output"] == {"rows": 3}
    assert event.payload["task"] == {"id": task.id, "name": "report", "metadata": {"team": "ops"}}
    assert await store.list_events("alice") == [event]
    (attempt,) = await store.list_attempts(None, run_id)
    assert attempt.status == AttemptStatus.SUCCESS and attempt.finished_at == end


async def test_a_success_queues_a_run_of_each_active_dependent_with_the_upstream_run(
    store: Store,
) -> None:
    extract = make_task(name="extract")
    transform = make_task(name="transform", depends_on=extract.id, next_fire_at=None)
    paused = make_task(name="paused", depends_on=extract.id, status=TaskStatus.PAUSED)
    foreign = make_task("mallory", name="foreign", depends_on=extract.id)
    for t in (extract, transform, paused, foreign):
        await add_task(store, t)
    assert (await store.get_task(None, transform.id)).depends_on == extract.id
    run_id = await fire_once(store, extract)
    await start(store, run_id)
    end = T0 + timedelta(seconds=3)
    await store.finish_runs("n1", [RunOutcome(run_id, AttemptStatus.SUCCESS, end, output=[1, 2])])
    (queued_run,) = await store.list_runs(None, task_id=transform.id)
    assert queued_run.status == RunStatus.QUEUED and queued_run.trigger == Trigger.DEPENDENCY
    assert queued_run.due_at == end and queued_run.scheduled_for is None
    assert queued_run.input == {
        "task": {"id": extract.id, "name": "extract"},
        "run": {
            "id": run_id,
            "status": "success",
            "output": [1, 2],
            "finishedAt": end.isoformat().replace("+00:00", "Z"),
            "trigger": "schedule",
        },
    }
    # Neither the paused task nor another owner's task is chained; a failure chains nothing.
    assert await store.list_runs(None, task_id=paused.id) == []
    assert await store.list_runs(None, task_id=foreign.id) == []
    second = await fire_once(store, extract, T0 + timedelta(minutes=1))
    await start(store, second, T0 + timedelta(minutes=1))
    await store.finish_runs("n1", [RunOutcome(second, AttemptStatus.FAILURE, end)])
    assert len(await store.list_runs(None, task_id=transform.id)) == 1


async def test_an_event_run_is_created_once_per_event_id(store: Store) -> None:
    task = make_task()
    await add_task(store, task)
    first = queued(None, trigger=Trigger.EVENT, input={"order": 7})
    assert await store.create_event_run(task.id, "evt-1", first, T0) == (first.id, True)
    again = queued(None, trigger=Trigger.EVENT, input={"order": 7})
    assert await store.create_event_run(task.id, "evt-1", again, T0) == (first.id, False)
    assert await store.event_run_id(task.id, "evt-1") == first.id
    assert await store.event_run_id(task.id, "evt-9") is None
    other = queued(None, trigger=Trigger.EVENT)
    assert await store.create_event_run(task.id, "evt-2", other, T0) == (other.id, True)
    (run,) = [r for r in await store.list_runs(None, task_id=task.id) if r.id == first.id]
    assert run.input == {"order": 7} and run.trigger == Trigger.EVENT
    assert len(await store.list_runs(None, task_id=task.id)) == 2
    assert await store.count_runs_since(task.id, Trigger.EVENT, T0) == 2
    assert await store.count_runs_since(task.id, Trigger.EVENT, T0 + timedelta(seconds=1)) == 0
    assert await store.count_runs_since(task.id, Trigger.MANUAL, T0) == 0
    with pytest.raises(TaskNotFound):
        await store.create_event_run("tsk_unknown", "evt-1", queued(None), T0)


async def test_finish_runs_with_retry_queues_the_run_again(store: Store) -> None:
    task = make_task()
    await add_task(store, task)
    run_id = await fire_once(store, task)
    await start(store, run_id)
    retry = T0 + timedelta(seconds=10)
    runs, events = await store.finish_runs(
        "n1",
        [RunOutcome(run_id, AttemptStatus.FAILURE, T0, error_message="boom", retry_at=retry)],
    )
    assert events == [] and runs[0].status == RunStatus.QUEUED
    assert (await store.upcoming()).run_due_at == retry
    assert await store.claim_runs("n2", retry - timedelta(seconds=1), 10, LEASE) == []
    await start(store, run_id, retry, node="n2")
    _, events = await store.finish_runs(
        "n2", [RunOutcome(run_id, AttemptStatus.TIMEOUT, retry, error_message="slow")]
    )
    assert [e.type for e in events] == [EventType.RUN_FAILED]
    final = await store.get_run(None, run_id)
    assert final.status == RunStatus.TIMEOUT and final.attempt == 2
    attempts = await store.list_attempts(None, run_id)
    assert [(a.number, a.status, a.node) for a in attempts] == [
        (1, AttemptStatus.FAILURE, "n1"),
        (2, AttemptStatus.TIMEOUT, "n2"),
    ]


async def test_finish_runs_skips_runs_the_node_no_longer_holds(store: Store) -> None:
    task = make_task()
    await add_task(store, task)
    run_id = await fire_once(store, task)
    await start(store, run_id)
    late = T0 + LEASE + timedelta(seconds=1)
    (taken,) = await store.claim_expired_runs("n2", late, 10, LEASE)
    assert taken.id == run_id and taken.claimed_by == "n2"
    runs, events = await store.finish_runs("n1", [RunOutcome(run_id, AttemptStatus.SUCCESS, late)])
    assert runs == [] and events == []
    runs, _ = await store.finish_runs(
        "n2", [RunOutcome(run_id, AttemptStatus.INTERRUPTED, late, error_message="lost")]
    )
    assert runs[0].status == RunStatus.FAILURE


async def test_a_wakeups_success_is_a_wakeup_fired_event(store: Store) -> None:
    task = make_task(
        kind="wakeup", action={"type": "wakeup", "reason": "check CI", "context": {"pr": 7}}
    )
    await add_task(store, task)
    run_id = await fire_once(store, task)
    await start(store, run_id)
    _, (event,) = await store.finish_runs("n1", [RunOutcome(run_id, AttemptStatus.SUCCESS, T0)])
    assert event.type == EventType.WAKEUP_FIRED
    assert event.payload["wakeup"] == {"reason": "check CI", "context": {"pr": 7}}


async def test_release_runs_returns_unstarted_claims(store: Store) -> None:
    task = make_task()
    await add_task(store, task)
    run_id = await fire_once(store, task)
    await store.claim_runs("n1", T0, 10, LEASE)
    await store.release_runs("n1", [run_id])
    assert [r.id for r in await store.claim_runs("n2", T0, 10, LEASE)] == [run_id]


async def test_claim_expired_runs_takes_only_expired_leases(store: Store) -> None:
    task = make_task()
    await add_task(store, task)
    run_id = await fire_once(store, task)
    await start(store, run_id)
    assert await store.claim_expired_runs("n2", T0 + LEASE - timedelta(seconds=1), 10, LEASE) == []
    assert (
        len(await store.claim_expired_runs("n2", T0 + LEASE + timedelta(seconds=1), 10, LEASE)) == 1
    )


async def test_get_and_list_runs_are_owner_scoped_newest_first(store: Store) -> None:
    task = make_task(overlap=Overlap.ALLOW)
    await add_task(store, task)
    ids = [(await store.create_run(None, task.id, queued(None), T0)).id for _ in range(4)]
    with pytest.raises(RunNotFound):
        await store.get_run("bob", ids[0])
    listed = await store.list_runs("alice", task_id=task.id, limit=3)
    assert [r.id for r in listed] == ids[::-1][:3]
    rest = await store.list_runs("alice", task_id=task.id, before=listed[-1].id)
    assert [r.id for r in rest] == [ids[0]]
    assert await store.list_runs("bob") == []
    assert await store.list_runs("alice", status=RunStatus.SUCCESS) == []
    with pytest.raises(TaskNotFound):
        await store.list_runs("bob", task_id=task.id)
    with pytest.raises(RunNotFound):
        await store.list_attempts("bob", ids[0])


# --- events -------------------------------------------------------------------------------


async def test_events_are_per_owner_with_an_increasing_cursor(store: Store) -> None:
    assert await store.latest_cursor("alice") == 0
    cursors = {}
    for owner in ("alice", "bob", "alice"):
        task = make_task(owner)
        await add_task(store, task)
        run_id = await fire_once(store, task)
        await start(store, run_id)
        _, (event,) = await store.finish_runs(
            "n1", [RunOutcome(run_id, AttemptStatus.FAILURE, T0, error_message="x")]
        )
        cursors.setdefault(owner, []).append(event.cursor)
    alice = await store.list_events("alice")
    assert [e.cursor for e in alice] == cursors["alice"]
    # Counted per owner: bob's event between alice's two leaves no gap in hers.
    assert cursors == {"alice": [1, 2], "bob": [1]}
    assert [e.cursor for e in await store.list_events("alice", after=alice[0].cursor)] == [
        cursors["alice"][1]
    ]
    assert len(await store.list_events("alice", limit=1)) == 1
    assert await store.latest_cursor("alice") == cursors["alice"][1]
    assert await store.latest_cursor("carol") == 0


# --- retention ----------------------------------------------------------------------------


async def test_prune_bounds_history_by_count_and_age(store: Store) -> None:
    task = make_task(overlap=Overlap.ALLOW)
    await add_task(store, task)
    finished = []
    for i in range(5):
        when = T0 + timedelta(days=i)
        run = await store.create_run(None, task.id, queued(None, due_at=T0), T0)
        await store.claim_runs("n1", when, 10, LEASE)
        await store.start_attempts("n1", when, [run.id])
        await store.finish_runs("n1", [RunOutcome(run.id, AttemptStatus.SUCCESS, when)])
        finished.append(run.id)
    unfinished = await store.create_run(None, task.id, queued(None, due_at=T0), T0)
    now = T0 + timedelta(days=10)
    counts = await store.prune(
        now, runs_per_task=3, run_max_age=timedelta(days=8), event_max_age=timedelta(days=7)
    )
    left = {r.id for r in await store.list_runs(None, task_id=task.id)}
    # Day 0 and 1 are older than 8 days; of the rest, the newest 3 are kept anyway.
    assert left == {finished[2], finished[3], finished[4], unfinished.id}
    assert counts.runs == 2
    # Events older than 7 days (days 0-2) are gone.
    assert counts.events == 3 and len(await store.list_events("alice")) == 2


# --- callbacks ----------------------------------------------------------------------------


async def _finished_with_callback(store: Store, url: str = "https://app.example/cb") -> Task:
    task = make_task(callback_url=url)
    await add_task(store, task)
    run_id = await fire_once(store, task)
    await start(store, run_id)
    await store.finish_runs("n1", [RunOutcome(run_id, AttemptStatus.SUCCESS, T0)])
    return task


async def test_a_callback_event_creates_a_pending_delivery_with_a_fixed_body(
    store: Store,
) -> None:
    import json as _json

    task = await _finished_with_callback(store)
    (delivery,) = await store.list_deliveries("alice")
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 0
    assert delivery.url == "https://app.example/cb" and delivery.task_id == task.id
    assert delivery.next_attempt_at == T0 and delivery.id.startswith("msg_")
    body = _json.loads(delivery.body)
    assert body["event"] == "task.run.completed" and body["timestamp"] == "2026-03-01T09:00:00Z"
    assert body["task"]["name"] == "report" and body["run"]["status"] == "success"
    (event,) = await store.list_events("alice")
    assert delivery.event_cursor == event.cursor
    assert await store.list_deliveries("bob") == []


async def test_deliveries_are_claimed_once_and_finished_by_their_claimant(store: Store) -> None:
    await _finished_with_callback(store)
    assert await store.next_delivery_due_at() == T0
    (claimed,) = await store.claim_deliveries("n1", T0, 10, LEASE)
    assert await store.claim_deliveries("n2", T0, 10, LEASE) == []
    retry = T0 + timedelta(seconds=5)
    assert (
        await store.finish_delivery(
            "n2", claimed.id, T0, delivered=False, retry_at=retry, status_code=500, error="x"
        )
        is None
    )
    again = await store.finish_delivery(
        "n1", claimed.id, T0, delivered=False, retry_at=retry, status_code=500, error="HTTP 500"
    )
    assert again is not None and again.status == DeliveryStatus.PENDING and again.attempts == 1
    assert again.last_status == 500 and await store.next_delivery_due_at() == retry
    assert await store.claim_deliveries("n1", T0, 10, LEASE) == []
    (second,) = await store.claim_deliveries("n2", retry, 10, LEASE)
    done = await store.finish_delivery(
        "n2", second.id, retry, delivered=True, retry_at=None, status_code=200, error=None
    )
    assert done is not None and done.status == DeliveryStatus.DELIVERED
    assert done.delivered_at == retry and done.attempts == 2
    assert await store.next_delivery_due_at() is None


async def test_a_dead_letter_can_be_redelivered(store: Store) -> None:
    await _finished_with_callback(store)
    (claimed,) = await store.claim_deliveries("n1", T0, 10, LEASE)
    dead = await store.finish_delivery(
        "n1", claimed.id, T0, delivered=False, retry_at=None, status_code=410, error="gone"
    )
    assert dead is not None and dead.status == DeliveryStatus.FAILED
    assert [d.id for d in await store.list_deliveries("alice", status=DeliveryStatus.FAILED)] == [
        claimed.id
    ]
    with pytest.raises(LookupError):
        await store.redeliver("bob", claimed.id, T0)
    later = T0 + timedelta(hours=1)
    again = await store.redeliver("alice", claimed.id, later)
    assert again.status == DeliveryStatus.PENDING and again.attempts == 0
    assert again.next_attempt_at == later


async def test_callback_secrets_rotate_with_a_grace_period(store: Store) -> None:
    task = make_task()
    await add_task(store, task)
    await store.add_callback_secret(task.id, "whsec_old", T0, None)
    assert await store.callback_secrets(task.id, T0) == ["whsec_old"]
    later = T0 + timedelta(minutes=1)
    grace_end = later + timedelta(hours=24)
    await store.add_callback_secret(task.id, "whsec_new", later, grace_end)
    assert await store.callback_secrets(task.id, later) == ["whsec_new", "whsec_old"]
    assert await store.callback_secrets(task.id, grace_end) == ["whsec_new"]


async def test_callback_secrets_of_several_tasks_come_in_one_read(store: Store) -> None:
    rotated, plain, retired, bare = (make_task() for _ in range(4))
    for task in (rotated, plain, retired, bare):
        await add_task(store, task)
    later = T0 + timedelta(minutes=1)
    await store.add_callback_secret(rotated.id, "whsec_r1", T0, None)
    await store.add_callback_secret(rotated.id, "whsec_r2", later, later + timedelta(hours=1))
    await store.add_callback_secret(plain.id, "whsec_p", T0, None)
    await store.add_callback_secret(retired.id, "whsec_x", T0, None)
    await store.add_callback_secret(retired.id, "whsec_y", later, None)  # x stops now
    found = await store.callback_secrets_of(
        [rotated.id, plain.id, retired.id, bare.id, plain.id, "tsk_unknown"], later
    )
    assert found == {
        rotated.id: ["whsec_r2", "whsec_r1"],
        plain.id: ["whsec_p"],
        retired.id: ["whsec_y"],
    }
    assert await store.callback_secrets_of([], later) == {}
    after_grace = later + timedelta(hours=1)
    assert (await store.callback_secrets_of([rotated.id], after_grace)) == {
        rotated.id: ["whsec_r2"]
    }


async def test_finished_deliveries_are_recorded_in_one_call_each_by_its_claimant(
    store: Store,
) -> None:
    for _ in range(4):
        await _finished_with_callback(store)
    delivered, retried, dead, held = await store.claim_deliveries("n1", T0, 10, LEASE)
    later = T0 + timedelta(seconds=40)  # past the lease: n2 takes one over
    (taken,) = await store.claim_deliveries("n2", later, 1, LEASE)
    assert taken.id == delivered.id
    (taken,) = await store.claim_deliveries("n2", later, 1, LEASE)
    assert taken.id == retried.id
    # n2 records its two; n1 still holds the other two.
    retry = later + timedelta(seconds=5)
    outcomes = [
        DeliveryOutcome(delivered.id, later, True, status_code=204),
        DeliveryOutcome(retried.id, later, False, retry, 503, "HTTP 503"),
        DeliveryOutcome(delivered.id, later, False, retry, 500, "a second outcome of one attempt"),
    ]
    first, second, again = await store.finish_deliveries("n2", outcomes)
    assert first is not None and first.status == DeliveryStatus.DELIVERED
    assert first.delivered_at == later and first.attempts == 1 and first.last_status == 204
    assert second is not None and second.status == DeliveryStatus.PENDING
    assert second.next_attempt_at == retry and second.last_error == "HTTP 503"
    assert again is None  # only the first outcome of a delivery counts
    outcomes = [
        DeliveryOutcome(held.id, later, True, status_code=200),
        DeliveryOutcome(dead.id, later, False, None, 410, "gone"),
        DeliveryOutcome(delivered.id, later, True, status_code=200),  # n2's, not n1's
    ]
    third, fourth, lost = await store.finish_deliveries("n1", outcomes)
    assert third is not None and third.status == DeliveryStatus.DELIVERED
    assert fourth is not None and fourth.status == DeliveryStatus.FAILED
    assert fourth.last_error == "gone" and fourth.next_attempt_at is None
    assert lost is None
    assert await store.finish_deliveries("n1", []) == []
    assert await store.next_delivery_due_at() == retry
    by_id = {d.id: d for d in await store.list_deliveries("alice")}
    assert by_id[delivered.id].attempts == 1 and by_id[held.id].attempts == 1
