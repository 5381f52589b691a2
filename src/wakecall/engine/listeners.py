"""What the engine tells the layers above: the events it writes and news of the runs of this
node, each heard through a listener (`Engine.add_listener`, `Engine.add_run_listener`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wakecall.models import AttemptStatus, Event, Run

__all__ = ["EventListener", "RunListener", "RunNews"]

#: Called with each batch of events just written. Must not block; runs on the engine's loop.
EventListener = Callable[[Sequence[Event]], None]


@dataclass(frozen=True, slots=True)
class RunNews:
    """What this node just wrote about runs (for metrics and the like)."""

    #: Runs created by fires: queued, skipped/missed at birth, or ended at birth (instant).
    created: Sequence[Run] = ()
    #: Runs whose attempt just ended, as written (final, or queued again for a retry), with
    #: how that attempt ended. A run that ended at birth is here and in `started` at once.
    finished: Sequence[tuple[Run, AttemptStatus]] = ()
    #: Runs whose attempt just started.
    started: Sequence[Run] = ()


#: Called with each `RunNews`. Must not block; runs on the engine's loop.
RunListener = Callable[[RunNews], None]
