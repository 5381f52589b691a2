"""The PostgreSQL store's finishing of runs: from the rows as started when neither changed since
(one statement), or as read again; their events, the announcement of an ended task, and
the runs queued for the tasks that depend on a success."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import asyncpg

from wakecall.models import Event, Run, RunStatus, Task, TaskStatus
from wakecall.store.base import RunOutcome
from wakecall.store.plans import (
    EventDraft,
    StreakChange,
    dependency_runs,
    end_marks,
    plan_finishes,
    succeeded_task_ids,
)
from wakecall.store.postgres.pending import _DRAFTS, _place_ends, _written, _written_cursors
from wakecall.store.postgres.rows import _dumps_or_none, _no_nul, _run_from_row, _task_from_row
from wakecall.store.postgres.runs import RunMethods
from wakecall.store.postgres.sql import (
    _FINISH_LOCK_SQL,
    _FINISH_SQL,
    _FINISH_STARTED_SQL,
    _OUTCOME_CTES,
    _RUN_WIDTH,
    _STREAKS_SQL,
    _TASK_COLUMNS,
)
from wakecall.store.postgres.started import _Started
from wakecall.store.rows import streak_text


class RunFinishes(RunMethods):
    """The run finishing of `PostgresStore`."""

    async def finish_runs(
        self, node: str, outcomes: Sequence[RunOutcome]
    ) -> tuple[list[Run], list[Event]]:
        if not outcomes:
            return [], []
        try:
            started = self._started_of(node, outcomes)
            if started is not None:
                done = await self._write(lambda conn: self._finish_started(conn, started))
                if done is not None:
                    return done
            return await self._finish_runs_read(node, outcomes)
        finally:
            for outcome in outcomes:
                self._started.pop(outcome.run_id, None)

    def _started_of(
        self, node: str, outcomes: Sequence[RunOutcome]
    ) -> list[tuple[_Started, RunOutcome]] | None:
        """The outcomes with their runs as this object started them, when it started them all
        for `node` and each ends the run (no retry) of a task that had not ended as expired;
        else None."""
        found: list[tuple[_Started, RunOutcome]] = []
        seen: set[str] = set()
        for outcome in outcomes:
            item = self._started.get(outcome.run_id)
            if (
                item is None
                or item.node != node
                or outcome.retry_at is not None
                or outcome.run_id in seen
                or item.task.status == TaskStatus.EXPIRED
            ):
                return None
            seen.add(outcome.run_id)
            found.append((item, outcome))
        return found

    async def _finish_started(
        self, conn: asyncpg.Connection, started: Sequence[tuple[_Started, RunOutcome]]
    ) -> tuple[list[Run], list[Event]] | None:
        """`finish_runs` in one statement, from the runs and tasks as `start_due_runs` read
        them: written only if neither row changed since (same `xmin`: the run still claimed
        and running as started, no lease renewed, no cancellation asked, the task not fired
        nor edited) and no task depends on one that succeeded; None (nothing written)
        otherwise, for `_finish_runs_read`."""
        held = {item.run.id: item.run for item, _ in started}
        tasks = {item.task.id: item for item, _ in started}
        plan = plan_finishes(
            held, {t: item.task for t, item in tasks.items()}, [o for _, o in started], _DRAFTS
        )
        if plan.streaks:
            return None  # a failure streak to write: read the tasks as they are now
        handled = plan.handled
        pending = [p for p in plan.events if isinstance(p, EventDraft)]  # no task had ended
        keyed = _frees_a_key(item.task for item in tasks.values())
        row = await conn.fetchrow(
            _FINISH_STARTED_SQL,
            *self._outcome_args(handled),
            *self._events_args(pending, keyed),
            list(tasks),
            sorted(f"{task_id}:{item.task_xmin}" for task_id, item in tasks.items()),
            [item.run.id for item, _ in started],
            sorted(f"{item.run.id}:{item.run_xmin}" for item, _ in started),
            list({run.task_id for run, _ in handled if run.status == RunStatus.SUCCESS}),
        )
        assert row is not None
        if not row[0]:
            return None
        return [run for run, _ in handled], _written_cursors(pending, row[1])

    async def _finish_runs_read(
        self, node: str, outcomes: Sequence[RunOutcome]
    ) -> tuple[list[Run], list[Event]]:
        """`finish_runs` from the rows as they are now: read (locked) first, then written."""
        run_ids = list(dict.fromkeys(o.run_id for o in outcomes))

        async def finish_runs_read_on(conn: asyncpg.Connection) -> tuple[list[Run], list[Event]]:
            tasks: dict[str, Task] = {}
            with_dependents: set[str] = set()
            held: dict[str, Run] = {}
            for r in await conn.fetch(_FINISH_LOCK_SQL, run_ids):
                if r[0] is not None:  # a run
                    if r[15] == node and r[6] in ("queued", "running"):
                        held[r[0]] = _run_from_row(r)
                else:  # a task
                    tasks[r[_RUN_WIDTH]] = _task_from_row(r[_RUN_WIDTH:])
                    if r[-1]:
                        with_dependents.add(r[_RUN_WIDTH])
            plan = plan_finishes(held, tasks, outcomes, _DRAFTS)
            handled, pending = plan.handled, plan.events
            if not handled:
                return [], []
            if plan.streaks:
                await self._write_streaks(conn, plan.streaks)
            written = plan.written
            # A retry queued, or a concurrency key freed: the nodes holding runs look again.
            freed = plan.retried or _frees_a_key(
                tasks[run.task_id] for run, _ in handled if run.task_id in tasks
            )
            ending = end_marks(pending)
            if ending:
                # Whether an expired task's last run just ended is read after the runs are
                # written.
                await self._write_outcomes(conn, handled)
                announced = await self._mark_ends_announced(conn, ending)
                queued = await self._queue_dependents(conn, tasks, with_dependents, written)
                events = await self._append_events(
                    conn, _place_ends(pending, announced), due=freed or queued
                )
                return written, events
            queued = await self._queue_dependents(conn, tasks, with_dependents, written)
            due = freed or queued
            if not pending:
                await self._write_outcomes(conn, handled)
                if due:
                    await self._hint(conn, due=True)
                return written, []
            # The usual case: the runs, their attempts and their events in one statement.
            plain = [p for p in pending if isinstance(p, EventDraft)]
            cursors = await conn.fetch(
                _FINISH_SQL, *self._outcome_args(handled), *self._events_args(plain, due)
            )
            return written, _written(plain, cursors)

        return await self._tx(finish_runs_read_on)

    async def _queue_dependents(
        self,
        conn: asyncpg.Connection,
        tasks: Mapping[str, Task],
        with_dependents: set[str],
        written: Sequence[Run],
    ) -> bool:
        """A run, with the upstream run as input, for each active task that depends on the
        task of a run that just succeeded (of `tasks`, those `with_dependents` may have one;
        see `plans.dependency_runs`); whether any was queued."""
        upstream = {t: task for t, task in tasks.items() if t in with_dependents}
        upstream_ids = succeeded_task_ids(upstream, written)
        if not upstream_ids:
            return False
        rows = await conn.fetch(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE status = 'active' "
            "AND depends_on = ANY($1::text[]) ORDER BY id",
            upstream_ids,
        )
        dependents: dict[str, list[Task]] = {}
        for row in rows:
            task = _task_from_row(row)
            assert task.depends_on is not None
            dependents.setdefault(task.depends_on, []).append(task)
        queued = dependency_runs(upstream, dependents, written)
        for task, new, at in queued:
            await self._insert_run(conn, task, new, at)
        return bool(queued)

    @staticmethod
    async def _write_streaks(conn: asyncpg.Connection, streaks: Mapping[str, StreakChange]) -> None:
        """The failure streaks the finished runs changed, and the pauses they caused (the
        tasks are locked: `_FINISH_LOCK_SQL`)."""
        changes = list(streaks.values())
        await conn.execute(
            _STREAKS_SQL,
            list(streaks),
            [streak_text(c.failure_streak) for c in changes],
            [c.pause_note for c in changes],
            [c.paused_at for c in changes],
        )

    @staticmethod
    async def _write_outcomes(
        conn: asyncpg.Connection, handled: Sequence[tuple[Run, RunOutcome]]
    ) -> None:
        """Close the attempts and write the runs (queued again or final), in one statement."""
        await conn.execute(
            "WITH " + _OUTCOME_CTES.format(guard="") + " SELECT",
            *RunFinishes._outcome_args(handled),
        )

    @staticmethod
    def _outcome_args(handled: Sequence[tuple[Run, RunOutcome]]) -> list[Any]:
        runs = [run for run, _ in handled]
        final = [run.status != RunStatus.QUEUED for run in runs]
        return [
            [run.id for run in runs],
            [run.attempt for run in runs],
            [str(outcome.attempt_status) for _, outcome in handled],
            [outcome.finished_at for _, outcome in handled],
            [_no_nul(run.error_message) for run in runs],
            [str(run.status) for run in runs],
            [None if f else run.due_at for run, f in zip(runs, final, strict=True)],
            [run.duration_ms for run in runs],
            [_dumps_or_none(run.output) for run in runs],
            final,
        ]


def _frees_a_key(tasks: Iterable[Task]) -> bool:
    """Whether a run of these tasks that ends frees a concurrency key: then the nodes that hold
    runs back for it must look again (they would otherwise wait for their poll)."""
    return any(task.concurrency is not None for task in tasks)
