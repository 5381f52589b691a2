"""A run being executed on this node (`Flight`): its attempt's cancel scope, why something ended
it, and its heartbeats; and `Skipped`, raised when the task's condition says not to proceed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio

from wakecall.clock import Clock
from wakecall.models import AttemptStatus, Run, Task

__all__ = ["Flight", "Skipped"]


class Skipped(Exception):
    """The task's condition said not to proceed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(eq=False)
class Flight:
    run: Run
    task: Task
    #: The action's last sign of life (its start, a beat): the instant reports show, and the
    #: elapsed time heartbeats are measured on (a suspend or a clock step makes none silent).
    last_beat: datetime
    last_beat_elapsed: float
    stale: bool = False
    #: Started ahead of its instant (`EngineConfig.fire_lead`): the attempt waits for it.
    held: bool = False
    scope: anyio.CancelScope | None = None
    #: CANCELLED, TIMEOUT or INTERRUPTED once something ends the attempt; the first wins.
    cancel_reason: AttemptStatus | None = None
    cancel_message: str = ""
    outcome_queued: bool = False

    def cancel(self, reason: AttemptStatus, message: str) -> None:
        """End the attempt (at once, or as it begins): the first reason given is kept."""
        if self.cancel_reason is None:
            self.cancel_reason = reason
            self.cancel_message = message
        if self.scope is not None:
            self.scope.cancel()

    def beat_with(self, clock: Clock) -> Callable[[], None]:
        def beat() -> None:
            self.last_beat = clock.now()
            self.last_beat_elapsed = clock.monotonic()

        return beat

    def silence(self, clock: Clock) -> timedelta:
        """How long the action has given no sign of life, in elapsed time."""
        return timedelta(seconds=clock.monotonic() - self.last_beat_elapsed)
