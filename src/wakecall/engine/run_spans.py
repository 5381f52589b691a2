"""The spans of the runs the engine executes (`wakecall.spans`): one per attempt, around its
condition check and its action, whose context the action sends on (`ActionContext.
trace_headers`); and one per run, told once the run has ended, from its creation to its end.
Both are children of the trace context the run keeps (the call that started it); without
OpenTelemetry each attempt still sends a child of that context."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import anyio

from wakecall.actions import ActionContext, ActionFailed
from wakecall.models import Run, Task
from wakecall.spans import Attributes, record_span, traced
from wakecall.store.base import RunOutcome

__all__ = ["attempt_span", "run_span"]


@contextmanager
def attempt_span(
    ctx: ActionContext, *, quiet: tuple[type[BaseException], ...] = ()
) -> Iterator[ActionContext]:
    """A span around one attempt of `ctx.run`, and `ctx` with the trace headers its action
    sends. An `ActionFailed`, a cancellation (a timeout, a cancel request, a stop) or a crash
    ends it as an error; the exceptions of `quiet` (a condition that said no) do not."""
    task, run = ctx.task, ctx.run
    attributes: Attributes = {
        "wakecall.task.id": task.id,
        "wakecall.run.id": run.id,
        "wakecall.run.attempt": ctx.attempt,
        "wakecall.action.type": str(task.action.get("type")),
    }
    with traced("wakecall.attempt", run.trace, attributes) as span:
        try:
            yield dataclasses.replace(ctx, trace_headers=span.headers)
        except ActionFailed as exc:
            span.ended({"wakecall.attempt.status": "failure"}, exc.message)
            raise
        except anyio.get_cancelled_exc_class():
            span.ended({"wakecall.attempt.status": "cancelled"}, "cancelled or timed out")
            raise
        except quiet:
            span.ended({"wakecall.attempt.status": "skipped"})
            raise
        except Exception as exc:
            span.ended({"wakecall.attempt.status": "failure"}, type(exc).__name__)
            raise
        span.ended({"wakecall.attempt.status": "success"})


def run_span(task: Task, run: Run, outcome: RunOutcome) -> None:
    """Record the span of `run` once `outcome` ends it (nothing while it is to be retried)."""
    if outcome.retry_at is not None:
        return
    status = str(outcome.attempt_status)
    failed = status not in ("success", "skipped")
    record_span(
        "wakecall.run",
        run.trace,
        {
            "wakecall.task.id": task.id,
            "wakecall.run.id": run.id,
            "wakecall.run.trigger": str(run.trigger),
            "wakecall.run.attempts": run.attempt,
            "wakecall.run.status": status,
        },
        start=run.created_at,
        end=outcome.finished_at,
        error=(outcome.error_message or status) if failed else None,
    )
