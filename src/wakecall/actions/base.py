"""What a run does: one small interface, one module per kind of action."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from wakecall.clock import Clock
    from wakecall.models import Run, Task

__all__ = ["ActionContext", "ActionFailed", "Executor", "Executors", "InstantExecutor"]


def _no_beat() -> None:
    return None


@dataclass(frozen=True, slots=True)
class ActionContext:
    task: Task
    run: Run
    attempt: int
    clock: Clock
    #: Call to say the action is alive and making progress (a command's output does it);
    #: a running run with no beat for the heartbeat timeout is reported as stale.
    beat: Callable[[], None] = _no_beat
    #: The W3C trace headers (`traceparent`, `tracestate`) the attempt's requests carry: a
    #: child of its run's trace context (`wakecall.spans`); empty when the run has none.
    trace_headers: Mapping[str, str] = field(default_factory=dict)


class ActionFailed(Exception):
    """The action ran and failed. `output` (JSON) is kept on the run next to the message."""

    def __init__(self, message: str, output: Any = None):
        super().__init__(message)
        self.message = message
        self.output = output


class Executor(Protocol):
    """Executes one kind of action. Returns the run's output (JSON-able) on success, raises
    `ActionFailed` on failure. It is cancelled (timeout, cancel request) through anyio
    cancellation and must clean up after itself when it is."""

    async def execute(self, ctx: ActionContext) -> Any: ...


class InstantExecutor(Executor, Protocol):
    """An executor whose action calls nothing outside and cannot fail: a run's output follows
    from its task alone. The engine finishes such runs in the pass that fires them, in the
    transaction that records the fire, without a concurrency slot or a worker; `execute` still
    serves the runs that start later (manual, queued behind another or retried ones, tasks with
    a condition to check)."""

    def instant_output(self, task: Task) -> Any:
        """The output of a run of `task`; must not block or raise."""
        ...


Executors = Mapping[str, Executor]
