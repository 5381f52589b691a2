"""The failure streaks `plan_finishes` plans, without a database: what counts, what ends a
streak, the pause when it reaches the limit, and several runs of one task in one batch."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from support.records import T0, make_task
from wakecall.ids import new_id
from wakecall.models import (
    AttemptStatus,
    Run,
    RunStatus,
    Task,
    TaskStatus,
    Trigger,
    run_from_values,
)
from wakecall.store.base import RunOutcome
from wakecall.store.plans import Drafts, EventDraft, StreakChange, plan_finishes

DRAFTS = Drafts(json.JSONEncoder(default=str).encode)
LATER = T0 + timedelta(seconds=3)


def running(task: Task) -> Run:
    return run_from_values(
        (new_id("run"), task.id, task.owner, Trigger.SCHEDULE, T0, T0, RunStatus.RUNNING, 1, 1,
         T0, T0, None, None, None, None, "n1", T0 + timedelta(seconds=30), False, None, None, None)
    )  # fmt: skip


def finish(task: Task, *how: AttemptStatus, **outcome: Any) -> tuple[list[Run], Any]:
    runs = [running(task) for _ in how]
    outcomes = [
        RunOutcome(r.id, h, LATER + timedelta(seconds=k), **outcome)
        for k, (r, h) in enumerate(zip(runs, how, strict=True))
    ]
    return runs, plan_finishes({r.id: r for r in runs}, {task.id: task}, outcomes, DRAFTS)


STREAKS = [
    # (attempt status, streak before) -> streak after (None: unchanged, nothing written)
    (AttemptStatus.FAILURE, (), ("new",)),
    (AttemptStatus.TIMEOUT, ("a",), ("a", "new")),
    (AttemptStatus.INTERRUPTED, ("a",), ("a", "new")),  # its last attempt: a failure
    (AttemptStatus.SUCCESS, ("a",), ()),
    (AttemptStatus.SUCCESS, (), None),  # nothing to end: the fast path stays open
    (AttemptStatus.SKIPPED, ("a",), None),
    (AttemptStatus.CANCELLED, ("a",), None),
]


@pytest.mark.parametrize(("how", "before", "after"), STREAKS)
def test_what_counts_and_what_ends_a_streak(
    how: AttemptStatus, before: tuple[str, ...], after: tuple[str, ...] | None
) -> None:
    task = make_task(pause_after_failures=3, failure_streak=before)
    (run,), plan = finish(task, how)
    if after is None:
        assert plan.streaks == {}
    else:
        streak = tuple(run.id if s == "new" else s for s in after)
        assert plan.streaks == {task.id: StreakChange(streak)}


def test_without_a_limit_nothing_is_counted() -> None:
    _, plan = finish(make_task(), AttemptStatus.FAILURE, AttemptStatus.FAILURE)
    assert plan.streaks == {}


def test_the_run_that_reaches_the_limit_pauses_the_task_after_its_own_event() -> None:
    task = make_task(pause_after_failures=2, failure_streak=("a",))
    runs, plan = finish(task, AttemptStatus.FAILURE, AttemptStatus.FAILURE, error_message="503")
    first, second = runs
    # The first run reaches 2 (a, first); the second keeps the last 2, the pause kept.
    change = plan.streaks[task.id]
    assert change.failure_streak == (first.id, second.id)
    assert change.paused_at == LATER and change.pause_note is not None
    assert change.pause_note.startswith(f"paused after 2 failed runs in a row: a, {first.id}")
    assert "the last said: 503" in change.pause_note
    drafts = [d for d in plan.events if isinstance(d, EventDraft)]
    assert [str(d.event.type) for d in drafts] == [
        "task.run.failed",
        "task.paused",
        "task.run.failed",
    ]
    paused = drafts[1]
    assert paused.created_at == LATER and paused.event.run_id is None
    assert paused.event.payload["failedRuns"] == ["a", first.id]
    assert paused.event.payload["reason"] == "failures"


@pytest.mark.parametrize("status", [TaskStatus.PAUSED, TaskStatus.EXPIRED])
def test_a_task_that_is_not_active_is_not_paused(status: TaskStatus) -> None:
    task = make_task(pause_after_failures=1, status=status)
    (run,), plan = finish(task, AttemptStatus.FAILURE)
    assert plan.streaks == {task.id: StreakChange((run.id,))}
    assert "task.paused" not in [
        str(d.event.type) for d in plan.events if isinstance(d, EventDraft)
    ]
