"""The PostgreSQL store's finishing of runs: from the rows as started when neither changed since
(one statement), or as read again; their events, the announcement of an ended task, and
the runs queued for the tasks that depend on a success."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from wakecall.models import (
    Event,
    Run,
    RunStatus,
    Task,
    TaskStatus,
    event_type_for,
    run_event_payload,
)
from wakecall.store.base import NewEvent, RunOutcome, dependency_run
from wakecall.store.postgres.pending import (
    _EndMark,
    _PendingEvent,
    _place_ends,
    _written,
    _written_cursors,
)
from wakecall.store.postgres.rows import _dumps_or_none, _no_nul, _run_from_row, _task_from_row
from wakecall.store.postgres.runs import RunMethods
from wakecall.store.postgres.sql import (
    _FINISH_LOCK_SQL,
    _FINISH_SQL,
    _FINISH_STARTED_SQL,
    _OUTCOME_CTES,
    _RUN_WIDTH,
    _TASK_COLUMNS,
)
from wakecall.store.postgres.started import _Started
from wakecall.store.rows import ATTEMPT_STATUS_TO_RUN


def _run_after(run: Run, outcome: RunOutcome) -> Run:
    """The run as its attempt's outcome leaves it: queued again for a retry, or final."""
    if outcome.retry_at is not None:
        return run.replace(
            status=RunStatus.QUEUED,
            due_at=outcome.retry_at,
            claimed_by=None,
            lease_expires_at=None,
            error_message=outcome.error_message,
            output=outcome.output,
        )
    duration = outcome.duration_ms
    if duration is None and run.started_at is not None:
        duration = int((outcome.finished_at - run.started_at).total_seconds() * 1000)
    return run.replace(
        status=ATTEMPT_STATUS_TO_RUN[outcome.attempt_status],
        finished_at=outcome.finished_at,
        duration_ms=duration,
        output=outcome.output,
        error_message=outcome.error_message,
        claimed_by=None,
        lease_expires_at=None,
    )


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
        handled = [(_run_after(item.run, outcome), outcome) for item, outcome in started]
        tasks = {item.task.id: item for item, _ in started}
        pending = [
            _PendingEvent(
                item.task.owner,
                NewEvent(
                    event_type_for(item.task, run),
                    item.task.id,
                    run.id,
                    run_event_payload(item.task, run),
                ),
                outcome.finished_at,
                item.task.callback_url,
            )
            for (item, _), (run, outcome) in zip(started, handled, strict=True)
        ]
        row = await conn.fetchrow(
            _FINISH_STARTED_SQL,
            *self._outcome_args(handled),
            *self._events_args(pending, False),
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
            handled: list[tuple[Run, RunOutcome]] = []
            for outcome in outcomes:
                run = held.pop(outcome.run_id, None)
                if run is None:
                    continue  # not ours (any more), gone, or already handled in this batch
                handled.append((_run_after(run, outcome), outcome))
            if not handled:
                return [], []

            # Events in outcome order; an expired task's announcement follows its last run.
            pending: list[_PendingEvent | _EndMark] = []
            for run, outcome in handled:
                task = tasks.get(run.task_id)
                if run.status == RunStatus.QUEUED or task is None:
                    continue  # retried, or deleted while running: no one to tell
                pending.append(
                    _PendingEvent(
                        task.owner,
                        NewEvent(
                            event_type_for(task, run), task.id, run.id, run_event_payload(task, run)
                        ),
                        outcome.finished_at,
                        task.callback_url,
                    )
                )
                if task.status == TaskStatus.EXPIRED:
                    pending.append(_EndMark(task, outcome.finished_at))
            written = [run for run, _ in handled]
            retried = any(run.status == RunStatus.QUEUED for run in written)
            ending = [p.task.id for p in pending if isinstance(p, _EndMark)]
            if ending:
                # Whether an expired task's last run just ended is read after the runs are
                # written.
                await self._write_outcomes(conn, handled)
                announced = await self._mark_ends_announced(conn, list(dict.fromkeys(ending)))
                queued = await self._queue_dependents(conn, tasks, with_dependents, written)
                events = await self._append_events(
                    conn, _place_ends(pending, announced), due=retried or queued
                )
                return written, events
            queued = await self._queue_dependents(conn, tasks, with_dependents, written)
            due = retried or queued
            if not pending:
                await self._write_outcomes(conn, handled)
                if due:
                    await self._hint(conn, due=True)
                return written, []
            # The usual case: the runs, their attempts and their events in one statement.
            plain = [p for p in pending if isinstance(p, _PendingEvent)]
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
        task of a run that just succeeded (of `tasks`, those `with_dependents` may have one);
        whether any was queued."""
        succeeded = [
            r
            for r in written
            if r.status == RunStatus.SUCCESS and r.task_id in tasks and r.task_id in with_dependents
        ]
        if not succeeded:
            return False
        rows = await conn.fetch(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE status = 'active' "
            "AND depends_on = ANY($1::text[]) ORDER BY id",
            list({r.task_id for r in succeeded}),
        )
        dependents: dict[str, list[Task]] = {}
        for row in rows:
            task = _task_from_row(row)
            assert task.depends_on is not None
            dependents.setdefault(task.depends_on, []).append(task)
        queued = False
        for run in succeeded:
            upstream = tasks[run.task_id]
            for task in dependents.get(run.task_id, ()):
                if task.owner == upstream.owner:
                    assert run.finished_at is not None
                    new = dependency_run(upstream, run)
                    await self._insert_run(conn, task, new, run.finished_at)
                    queued = True
        return queued

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
