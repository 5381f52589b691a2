"""What the engine tells the layers above of the runs of this node, heard through a listener
(`Engine.add_run_listener`); the events it writes go to its fan-out (`delivery.fanout`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wakecall.models import AttemptStatus, Run

__all__ = ["RunListener", "RunNews"]


@dataclass(frozen=True, slots=True)
class RunNews:
    """What this node just wrote about runs (for metrics and the like)."""

    #: Runs created by fires: queued, skipped/missed at birth, or ended at birth (instant).
    created: Sequence[Run] = ()
    #: Runs whose attempt just ended, as written (final, or queued again for a retry), with
    #: how that attempt ended. A run that ended at birth is here and in `started` at once.
    finished: Sequence[tuple[Run, AttemptStatus]] = ()
    #: Runs whose attempt just started. A run started ahead of its instant (`fire_lead`) is
    #: told when its action begins, with `started_at` then.
    started: Sequence[Run] = ()


#: Called with each `RunNews`. Must not block; runs on the engine's loop.
RunListener = Callable[[RunNews], None]
