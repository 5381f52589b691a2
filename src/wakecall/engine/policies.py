"""Pure policy decisions: which runs a due task gets (catch-up, overlap, limits, jitter) and
when a failed attempt is retried. No I/O; `now` is always a parameter.

Catch-up after downtime or a stalled loop, for a task whose next fire `f0` is due at `now`:

* the latest due fire `fl` is found with one step back (`latest_at_or_before(now)`);
* fires older than the catch-up window are never run; they are recorded as ONE `missed` run
  (for the newest of them) whose output counts them, so a week of downtime of a per-second task
  costs one row, not 600,000;
* `latest`: one run for `fl` when it is inside the window;
* `all`: a run for each fire inside the window, the newest `catchup_all_cap` of them;
* `skip`: `fl` runs only when it was the only fire due and is at most `skip_grace` late;
  otherwise every due fire goes into the missed record;
* a wakeup (task kind `wakeup`) is never missed: `fl` runs however late, whatever the policy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from wakecall.config import EngineConfig
from wakecall.ids import new_id
from wakecall.models import (
    CatchUp,
    Overlap,
    RetryPolicy,
    RunStatus,
    Task,
    TaskStatus,
    Trigger,
)
from wakecall.schedules import Schedule, jittered
from wakecall.store.base import DueTask, FirePlan, Instant, NewRun, TaskEnd

__all__ = ["MISSED_COUNT_CAP", "plan_fires", "retry_at"]

#: Missed fires are counted one by one up to this many, then reported as "at least".
MISSED_COUNT_CAP = 1000

_TINY = timedelta(microseconds=1)


@dataclass(frozen=True)
class _Missed:
    first: datetime
    last: datetime
    count: int
    capped: bool


def _count_fires(schedule: Schedule, first: datetime, last: datetime) -> tuple[int, bool]:
    """Fires in [first, last], counted up to MISSED_COUNT_CAP."""
    count, at = 1, first
    while count < MISSED_COUNT_CAP:
        nxt = schedule.next_after(at)
        if nxt is None or nxt > last:
            return count, False
        count, at = count + 1, nxt
    return count, True


def _fires_back(schedule: Schedule, newest: datetime, oldest: datetime, cap: int) -> list[datetime]:
    """Up to `cap` fires from `newest` back to `oldest` (inclusive), returned oldest first."""
    out = [newest]
    at = newest
    while len(out) < cap:
        prev = schedule.latest_at_or_before(at - _TINY)
        if prev is None or prev < oldest:
            break
        out.append(prev)
        at = prev
    out.reverse()
    return out


def plan_fires(
    due: DueTask,
    schedule: Schedule,
    now: datetime,
    config: EngineConfig,
    make_id: Callable[[str], str] = new_id,
    instant: Instant | None = None,
    reach: datetime | None = None,
) -> FirePlan:
    """The runs a due task gets at `now` and how it moves on. `instant` (the task's action
    ends at once, see `FirePlan.instant`) is kept on the plan only when no run of the task is
    unfinished, or its overlap policy allows runs side by side: then no overlap rule can
    apply to the new runs. With `reach` (a little after `now`), the fires due by `reach` are
    planned, as the engine's lead claims them (`EngineConfig.fire_lead`); the catch-up window
    and the grace of `skip` are still judged at `now`."""
    task = due.task
    first = task.next_fire_at
    reach = now if reach is None else max(now, reach)
    assert first is not None and first <= reach, "plan_fires needs a due task"

    latest = schedule.latest_at_or_before(reach)
    if latest is None or latest < first:
        latest = first
    window = timedelta(seconds=task.catchup_window_s)
    oldest_runnable = now - window

    # Which fires run, and which are missed.
    to_run: list[datetime] = []
    last_missed: datetime | None = None
    if task.catchup == CatchUp.SKIP:
        if latest == first and now - latest <= min(config.skip_grace, window):
            to_run = [latest]
        else:
            last_missed = latest
    elif latest >= oldest_runnable:
        if task.catchup == CatchUp.ALL:
            to_run = _fires_back(
                schedule, latest, max(first, oldest_runnable), config.catchup_all_cap
            )
            # Everything before the first replayed fire (outside the window or past the cap).
            last_missed = schedule.latest_at_or_before(to_run[0] - _TINY)
        else:
            # `latest` coalesces the fires inside the window into one run; only those older
            # than the window are missed.
            to_run = [latest]
            last_missed = schedule.latest_at_or_before(oldest_runnable - _TINY)
    else:
        last_missed = latest
    if task.kind == "wakeup" and latest not in to_run:
        # A wakeup is a promise to the agent: its fire runs however late it comes, whatever
        # the catch-up policy, and its event says how late (`models.run_event_payload`).
        to_run = [latest]
        last_missed = schedule.latest_at_or_before(latest - _TINY)
    missed: _Missed | None = None
    if last_missed is not None and last_missed >= first:
        count, capped = _count_fires(schedule, first, last_missed)
        missed = _Missed(first, last_missed, count, capped)

    nxt = schedule.next_after(max(latest, reach))
    trace = task.trace  # the creating call's, for the runs of the first fire only
    runs: list[NewRun] = []
    if missed is not None:
        runs.append(
            NewRun(
                id=make_id("run"),
                scheduled_for=missed.last,
                due_at=missed.last,
                status=RunStatus.MISSED,
                trigger=Trigger.CATCHUP,
                error_message=_missed_message(missed, task),
                output={
                    "missedFires": missed.count,
                    "countCapped": missed.capped,
                    "firstMissed": _iso(missed.first),
                    "lastMissed": _iso(missed.last),
                },
                counts=False,
                trace=trace,
            )
        )

    # Limits: max_runs counts scheduled runs that execute (not skipped or missed).
    end: TaskEnd | None = None
    if task.max_runs is not None:
        room = max(task.max_runs - task.run_count, 0)
        if len(to_run) >= room:
            to_run = to_run[len(to_run) - room :] if room else []
            end = TaskEnd(TaskStatus.EXPIRED, "max_runs_reached")
    if task.expires_at is not None:
        to_run = [f for f in to_run if f <= task.expires_at]
        if end is None and nxt is not None and nxt > task.expires_at:
            end = TaskEnd(TaskStatus.EXPIRED, "expired_at_reached")
    if end is None and nxt is None:
        end = TaskEnd(TaskStatus.COMPLETED, None)

    cancel: list[str] = []
    busy = bool(due.running_run_ids) or due.queued_runs > 0
    for i, fire in enumerate(to_run):
        following = to_run[i + 1] if i + 1 < len(to_run) else nxt
        due_at = jittered(schedule, task.id, fire, following) if schedule.jitter else fire
        if task.kind == "wakeup":
            trigger = Trigger.WAKEUP
        else:
            trigger = Trigger.SCHEDULE if fire == first else Trigger.CATCHUP
        status, reason = RunStatus.QUEUED, None
        if busy and i == 0:
            if task.overlap == Overlap.SKIP:
                status = RunStatus.SKIPPED
                reason = (
                    "skipped: the previous run was still unfinished (overlap policy 'skip'; "
                    "use 'queue', 'cancel_previous' or 'allow' to change this)"
                )
            elif task.overlap == Overlap.QUEUE and due.queued_runs >= task.max_queued:
                status = RunStatus.SKIPPED
                reason = (
                    f"skipped: {due.queued_runs} run(s) already queued behind the running one "
                    f"(max_queued {task.max_queued})"
                )
            elif task.overlap == Overlap.CANCEL_PREVIOUS:
                cancel = list(due.running_run_ids)
        runs.append(
            NewRun(
                id=make_id("run"),
                scheduled_for=fire,
                due_at=due_at,
                status=status,
                trigger=trigger,
                error_message=reason,
                counts=status == RunStatus.QUEUED,
                trace=trace,
            )
        )

    if end is not None:
        nxt = None
    return FirePlan(
        task_id=task.id,
        runs=runs,
        next_fire_at=nxt,
        last_fire_at=latest,
        end=end,
        cancel_run_ids=cancel,
        instant=instant if not busy or task.overlap == Overlap.ALLOW else None,
    )


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _missed_message(missed: _Missed, task: Task) -> str:
    count = f"at least {missed.count}" if missed.capped else str(missed.count)
    span = (
        f"due at {_iso(missed.first)}"
        if missed.count == 1
        else f"due from {_iso(missed.first)} to {_iso(missed.last)}"
    )
    return (
        f"missed: {count} fire(s) {span} were not run because the scheduler was not running "
        f"or was behind (catch-up policy '{task.catchup}', window "
        f"{int(task.catchup_window_s)}s)"
    )


def retry_at(policy: RetryPolicy, run_id: str, next_attempt: int, now: datetime) -> datetime:
    """When attempt `next_attempt` (2 for the first retry) may start. The jitter (up to 10% of
    the wait) is derived from the run id, so it is stable across processes."""
    wait = policy.wait_before(next_attempt)
    if policy.jitter and wait > timedelta(0):
        digest = hashlib.blake2b(f"{run_id}:{next_attempt}".encode(), digest_size=8).digest()
        fraction = int.from_bytes(digest, "big") / 2**64
        wait += wait * (0.1 * fraction)
    return now + wait
