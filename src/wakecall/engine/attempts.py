"""One attempt of a run on this node (`Attempts.run`): the task's condition, then its action,
inside a cancel scope that a cancel request, the heartbeat check, a stop or the attempt's
time limit cancels."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import anyio
import anyio.abc

from wakecall.actions import ActionContext, ActionFailed, Executor
from wakecall.actions.condition import ConditionChecker
from wakecall.clock import Clock
from wakecall.engine.flights import Flight, Skipped
from wakecall.engine.run_spans import attempt_span
from wakecall.models import AttemptStatus

__all__ = ["Attempts"]

log = logging.getLogger(__name__)


class Attempts:
    """Runs attempts with `executors` (by action type, read at each attempt: the engine's own
    mapping), `conditions` (None: a task with a condition fails) and `clock`."""

    def __init__(
        self,
        executors: Mapping[str, Executor],
        conditions: ConditionChecker | None,
        clock: Clock,
    ) -> None:
        self.executors = executors
        self.conditions = conditions
        self.clock = clock

    async def run(
        self, flight: Flight, tg: anyio.abc.TaskGroup
    ) -> tuple[AttemptStatus, Any, str | None]:
        """Run the flight's attempt (its time limit a task of `tg`). How it ended, its output
        and its error message: an action's own failure keeps its message whether or not the
        task has a timeout."""
        task = flight.task
        executor = self.executors.get(str(task.action.get("type")))
        if executor is None:
            available = ", ".join(sorted(self.executors))
            message = f"this server cannot run {task.action.get('type')!r} actions"
            return AttemptStatus.FAILURE, None, f"{message} (available: {available})"
        if flight.cancel_reason is not None:  # before it began (held, or asked at its start)
            return flight.cancel_reason, None, flight.cancel_message
        run, clock = flight.run, self.clock
        ctx = ActionContext(task, run, run.attempt, clock, beat=flight.beat_with(clock))
        time_limit = None if task.timeout_s is None else anyio.CancelScope()
        try:
            with anyio.CancelScope() as scope:
                flight.scope = scope
                if flight.cancel_reason is not None:
                    scope.cancel()
                if time_limit is not None:
                    assert task.timeout_s is not None
                    tg.start_soon(self._time_limit, flight, task.timeout_s, time_limit)
                output = await self._act(ctx, executor)
        except Skipped as exc:
            return AttemptStatus.SKIPPED, None, f"skipped: {exc.reason}"
        except ActionFailed as exc:
            return AttemptStatus.FAILURE, exc.output, exc.message
        except Exception as exc:  # an action's own bug: record it, keep the engine running
            log.exception("action of run %s raised", run.id)
            return AttemptStatus.FAILURE, None, f"{type(exc).__name__}: {exc}"
        finally:
            if time_limit is not None:
                time_limit.cancel()
        if scope.cancelled_caught:
            status = flight.cancel_reason or AttemptStatus.CANCELLED
            return status, None, flight.cancel_message or "cancelled"
        return AttemptStatus.SUCCESS, output, None

    async def _act(self, ctx: ActionContext, executor: Executor) -> Any:
        with attempt_span(ctx, quiet=(Skipped,)) as ctx:
            if ctx.task.condition is not None:
                if self.conditions is None:
                    raise ActionFailed("this server cannot check a task's condition")
                reason = await self.conditions.check(ctx)
                if reason is not None:
                    raise Skipped(reason)
            return await executor.execute(ctx)

    async def _time_limit(self, flight: Flight, seconds: float, scope: anyio.CancelScope) -> None:
        """Cancel the flight's attempt once it has run `seconds` of elapsed time (unless
        `scope` is cancelled first: the attempt ended)."""
        with scope:
            await self.clock.sleep(seconds)
            flight.cancel(
                AttemptStatus.TIMEOUT, f"timeout: the attempt took longer than {seconds:g}s"
            )
