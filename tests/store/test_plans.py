"""The planning layer both stores write from (`wakecall.store.plans`), table by table, with no
database: what a batch of finished attempts, a batch of fires and the chains after them
write, and the events with their callback bodies."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from support.records import T0, make_task
from wakecall.ids import new_id
from wakecall.models import (
    AttemptStatus,
    EventType,
    Run,
    RunStatus,
    Task,
    TaskStatus,
    Trigger,
    run_from_values,
)
from wakecall.store.base import FirePlan, Instant, NewEvent, NewRun, RunOutcome, TaskEnd
from wakecall.store.plans import (
    Drafts,
    EndMark,
    EventDraft,
    dependency_runs,
    moved_task,
    place_ends,
    plan_finishes,
    plan_fire_runs,
    plan_fire_writes,
)

DRAFTS = Drafts(json.JSONEncoder(default=str).encode)
LATER = T0 + timedelta(seconds=3)


def running(task: Task, **changes: Any) -> Run:
    """A run of `task` in its first attempt, claimed by n1, started at T0."""
    run = run_from_values(
        (new_id("run"), task.id, task.owner, Trigger.SCHEDULE, T0, T0, RunStatus.RUNNING, 1, 2,
         T0, T0, None, None, None, None, "n1", T0 + timedelta(seconds=30), False, None, None, None)
    )  # fmt: skip
    return run.replace(**changes)


def kinds(events: list[Any]) -> list[str]:
    return [f"end:{e.task.id}" if isinstance(e, EndMark) else str(e.event.type) for e in events]


# --- finished attempts ---------------------------------------------------------------------
FINISHES = [
    # (attempt status, retry?, task kind, task status) -> (run status, event types)
    (AttemptStatus.SUCCESS, False, "task", TaskStatus.ACTIVE, RunStatus.SUCCESS,
     ["task.run.completed"]),
    (AttemptStatus.SUCCESS, False, "wakeup", TaskStatus.ACTIVE, RunStatus.SUCCESS,
     ["wakeup.fired"]),
    (AttemptStatus.FAILURE, False, "task", TaskStatus.ACTIVE, RunStatus.FAILURE,
     ["task.run.failed"]),
    (AttemptStatus.TIMEOUT, False, "task", TaskStatus.ACTIVE, RunStatus.TIMEOUT,
     ["task.run.failed"]),
    (AttemptStatus.INTERRUPTED, False, "task", TaskStatus.ACTIVE, RunStatus.FAILURE,
     ["task.run.failed"]),
    (AttemptStatus.CANCELLED, False, "task", TaskStatus.ACTIVE, RunStatus.CANCELLED,
     ["task.run.failed"]),
    (AttemptStatus.SKIPPED, False, "task", TaskStatus.ACTIVE, RunStatus.SKIPPED,
     ["task.run.skipped"]),
    (AttemptStatus.FAILURE, True, "task", TaskStatus.ACTIVE, RunStatus.QUEUED, []),
    (AttemptStatus.SUCCESS, False, "task", TaskStatus.EXPIRED, RunStatus.SUCCESS,
     ["task.run.completed", "end"]),
]  # fmt: skip


@pytest.mark.parametrize(("how", "retry", "kind", "task_status", "status", "events"), FINISHES)
def test_an_attempts_outcome_plans_its_runs_end_and_event(
    how: AttemptStatus,
    retry: bool,
    kind: str,
    task_status: TaskStatus,
    status: RunStatus,
    events: list[str],
) -> None:
    task = make_task(kind=kind, status=task_status)
    run = running(task)
    retry_at = LATER + timedelta(seconds=10) if retry else None
    outcome = RunOutcome(
        run.id, how, LATER, output={"ok": 1}, error_message=None, retry_at=retry_at
    )
    plan = plan_finishes({run.id: run}, {task.id: task}, [outcome], DRAFTS)
    ((after, given),) = plan.handled
    assert given is outcome and after.status == status
    assert after.claimed_by is None and after.lease_expires_at is None
    if retry:
        assert after.due_at == retry_at and after.finished_at is None and plan.retried
    else:
        assert after.finished_at == LATER and after.duration_ms == 3000 and not plan.retried
    assert [k.split(":")[0] for k in kinds(plan.events)] == events
    for draft in plan.events:
        if isinstance(draft, EventDraft):
            assert draft.owner == task.owner and draft.created_at == LATER
            assert draft.event.run_id == run.id and draft.event.task_id == task.id


def test_only_held_runs_and_each_runs_first_outcome_are_planned() -> None:
    task = make_task()
    mine, theirs = running(task), running(task)
    gone_task = make_task()
    orphan = running(gone_task)
    outcomes = [
        RunOutcome(mine.id, AttemptStatus.SUCCESS, LATER, duration_ms=7),
        RunOutcome(theirs.id, AttemptStatus.SUCCESS, LATER),  # not held: another node's
        RunOutcome(mine.id, AttemptStatus.FAILURE, LATER),  # twice: the first counts
        RunOutcome(orphan.id, AttemptStatus.SUCCESS, LATER),  # its task was deleted
    ]
    plan = plan_finishes({mine.id: mine, orphan.id: orphan}, {task.id: task}, outcomes, DRAFTS)
    assert [(r.id, r.status, r.duration_ms) for r in plan.written] == [
        (mine.id, RunStatus.SUCCESS, 7),
        (orphan.id, RunStatus.SUCCESS, 3000),
    ]
    assert [d.event.run_id for d in plan.events if isinstance(d, EventDraft)] == [mine.id]


# --- events and their callback bodies ------------------------------------------------------
@pytest.mark.parametrize(
    ("event_type", "url", "delivered"),
    [
        (EventType.RUN_COMPLETED, "https://app.example/cb", True),
        (EventType.TASK_EXPIRED, "https://app.example/cb", True),
        (EventType.RUN_COMPLETED, None, False),
        (EventType.RUN_STALE, "https://app.example/cb", False),  # not a callback event
        (EventType.TASK_PAUSED, "https://app.example/cb", False),
    ],
)
def test_an_event_draft_fixes_its_callback_body_once(
    event_type: EventType, url: str | None, delivered: bool
) -> None:
    payload = {"task": {"id": "tsk_1"}, "n": 1}
    draft = DRAFTS.draft("alice", NewEvent(event_type, "tsk_1", None, payload), T0, url)
    assert json.loads(draft.payload) == payload
    if delivered:
        assert draft.url == url and draft.delivery_id is not None
        assert draft.delivery_id.startswith("msg_")
        assert draft.body is not None
        assert json.loads(draft.body) == {
            "event": str(event_type),
            "timestamp": "2026-03-01T09:00:00Z",
            **payload,
        }
    else:
        assert (draft.url, draft.delivery_id, draft.body) == (None, None, None)
    event = draft.written(5)
    assert (event.cursor, event.owner, event.type, event.payload) == (
        5,
        "alice",
        event_type,
        payload,
    )


def test_an_empty_payload_still_makes_a_whole_body() -> None:
    draft = DRAFTS.draft("a", NewEvent(EventType.TASK_EXPIRED, "t", None), T0, "https://x.example")
    assert draft.body == '{"event": "task.expired", "timestamp": "2026-03-01T09:00:00Z"}'


def test_a_store_that_alters_payloads_publishes_them_as_stored() -> None:
    safe = Drafts(lambda v: json.dumps({k: "?" for k in v}), read_back=True)
    draft = safe.draft("a", NewEvent(EventType.RUN_STALE, "t", None, {"x": "\x00"}), T0, None)
    assert draft.written(1).payload == {"x": "?"}


@pytest.mark.parametrize(
    ("announced", "expected"),
    [
        (set(), ["a", "b"]),
        ({"t1"}, ["a", "b", "end:t1"]),  # at the task's last mark only
    ],
)
def test_an_ended_task_is_announced_after_its_last_mark(
    announced: set[str], expected: list[str]
) -> None:
    task = make_task(id="t1", status=TaskStatus.EXPIRED, end_reason="max_runs_reached")
    a = DRAFTS.draft("alice", NewEvent(EventType.RUN_STALE, "t1", None, {"n": "a"}), T0, None)
    b = DRAFTS.draft("alice", NewEvent(EventType.RUN_STALE, "t1", None, {"n": "b"}), T0, None)
    placed = place_ends([EndMark(task, T0), a, b, EndMark(task, LATER)], announced, DRAFTS)
    names = [
        "end:" + str(p.event.task_id)
        if p.event.type == EventType.TASK_EXPIRED
        else p.event.payload["n"]
        for p in placed
    ]
    assert names == expected
    if announced:
        assert placed[-1].created_at == LATER
        assert placed[-1].event.payload["reason"] == "max_runs_reached"


# --- fires ---------------------------------------------------------------------------------
def queued(fire: Any = T0, **changes: Any) -> NewRun:
    fields: dict[str, Any] = {
        "id": new_id("run"),
        "scheduled_for": fire,
        "due_at": fire or T0,
        "status": RunStatus.QUEUED,
    }
    return NewRun(**(fields | changes))


def test_a_fire_plans_its_runs_its_task_and_its_events_in_plan_order() -> None:
    plain, instant, missing, ending = (make_task(name=n) for n in "pimx")
    wakeup = make_task(kind="wakeup", name="w")
    missed = queued(T0 - timedelta(hours=2), status=RunStatus.MISSED, counts=False)
    dup = queued(T0 - timedelta(minutes=1))
    plans = [
        FirePlan(plain.id, [queued()], T0 + timedelta(minutes=1), T0, cancel_run_ids=["run_x"]),
        FirePlan(instant.id, [queued()], None, T0, instant=Instant({"done": True})),
        FirePlan(wakeup.id, [queued()], None, T0, instant=Instant(None)),
        FirePlan(missing.id, [missed, dup, queued()], T0 + timedelta(minutes=1), T0),
        FirePlan(
            ending.id,
            [queued()],
            None,
            T0,
            end=TaskEnd(TaskStatus.EXPIRED, "max_runs_reached"),
            events=[NewEvent(EventType.TASK_PAUSED, ending.id, None, {"note": "x"})],
        ),
    ]
    tasks = [plain, instant, wakeup, missing, ending]
    accepted = list(zip(plans, tasks, strict=True))
    candidates = plan_fire_runs(accepted, T0)
    assert [r.status for r, _ in candidates] == [
        RunStatus.QUEUED,
        RunStatus.SUCCESS,  # instant: finished at birth
        RunStatus.SUCCESS,
        RunStatus.MISSED,
        RunStatus.QUEUED,
        RunStatus.QUEUED,
        RunStatus.QUEUED,
    ]
    inserted = {r.id for r, _ in candidates} - {dup.id}  # its slot had a run already
    writes = plan_fire_writes(accepted, candidates, inserted, T0, DRAFTS)
    assert [r.id for r in writes.created] == [r.id for r, _ in candidates if r.id != dup.id]
    assert [(m.task_id, m.counted, m.status) for m in writes.moves] == [
        (plain.id, 1, TaskStatus.ACTIVE),
        (instant.id, 1, TaskStatus.ACTIVE),
        (wakeup.id, 1, TaskStatus.ACTIVE),
        (missing.id, 1, TaskStatus.ACTIVE),  # the missed run does not count, the dup is none
        (ending.id, 1, TaskStatus.EXPIRED),
    ]
    assert writes.cancel_run_ids == ["run_x"]
    assert [r.task_id for r in writes.settled] == [instant.id, wakeup.id]
    assert set(writes.settled_tasks) == {instant.id, wakeup.id}
    assert kinds(writes.events) == [
        "task.run.completed",
        "wakeup.fired",
        "task.run.missed",
        "task.paused",
        f"end:{ending.id}",
    ]
    settled_event = writes.events[0]
    assert isinstance(settled_event, EventDraft)
    assert settled_event.event.payload["run"]["output"] == {"done": True}
    assert settled_event.event.payload["stats"]["totalRuns"] == 1  # the fire's count
    end = writes.events[-1]
    assert isinstance(end, EndMark)
    assert end.task == moved_task(ending, writes.moves[-1], T0)
    assert (end.task.status, end.task.run_count, end.task.claimed_by) == (
        TaskStatus.EXPIRED,
        1,
        None,
    )


# --- chains --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "owner", "dependent_status", "queued_runs"),
    [
        (RunStatus.SUCCESS, "alice", TaskStatus.ACTIVE, 1),
        (RunStatus.FAILURE, "alice", TaskStatus.ACTIVE, 0),  # a failure ends the chain
        (RunStatus.SUCCESS, "bob", TaskStatus.ACTIVE, 0),  # never across owners
        (RunStatus.SUCCESS, "alice", TaskStatus.PAUSED, 0),
    ],
)
def test_a_success_queues_a_run_of_each_dependent(
    status: RunStatus, owner: str, dependent_status: TaskStatus, queued_runs: int
) -> None:
    upstream = make_task()
    dependent = make_task(owner, depends_on=upstream.id, status=dependent_status)
    run = running(upstream).replace(status=status, finished_at=LATER, output={"rows": 3})
    made = dependency_runs({upstream.id: upstream}, {upstream.id: [dependent]}, [run])
    assert len(made) == queued_runs
    for task, new, at in made:
        assert task is dependent and at == LATER
        assert new.trigger == Trigger.DEPENDENCY and new.due_at == LATER
        assert new.input["run"]["id"] == run.id and new.input["run"]["output"] == {"rows": 3}
