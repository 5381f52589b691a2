"""Backfills: the runs a backfill of past fires (slots) writes, planned once for every backend.

A backfill run has trigger `backfill`, names its slot in `scheduled_for`, is due at once and
does not count toward `max_runs`. `(task_id, scheduled_for)` is unique among backfill runs (and
apart from the runs the schedule made, so a slot the schedule ran or missed can be backfilled
once more): a slot backfilled before gets nothing new, however many callers ask at once.

Its overlap (`BackfillOverlap`) is its own, whatever the task's (`store.plans.plan_backfill`):

* `queue`: every new slot gets a queued run; they start one at a time in slot order (the claim
  treats them as a task that does not allow overlap: none starts while a run of the task runs);
* `allow`: every new slot gets a queued run; they start side by side;
* `skip`: the slots are taken in order as if each came while the one before was unfinished
  (Temporal's rule): the first new slot is queued when no run of the task is unfinished, and
  every other one is written `skipped`, so at most one of them runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from wakecall.models import BackfillOverlap, Run
from wakecall.tracecontext import TraceContext

__all__ = ["Backfill", "Backfilled", "claim_overlap"]


@dataclass(frozen=True, slots=True)
class Backfill:
    """A backfill to write: runs of task `task_id` for `slots` (fires of its schedule, oldest
    first, due by the time it is written), with `overlap`, carrying `trace` (the trace context
    of the call that asked for them); `dry_run` writes nothing and answers what would be
    written."""

    task_id: str
    slots: Sequence[datetime]
    overlap: BackfillOverlap = BackfillOverlap.QUEUE
    dry_run: bool = False
    trace: TraceContext | None = None


@dataclass(frozen=True, slots=True)
class Backfilled:
    """What a backfill wrote (or, in a dry run, would write)."""

    #: The runs written (queued, or skipped at birth), oldest slot first.
    runs: list[Run] = field(default_factory=list)
    #: The slots that had a backfill run already, oldest first.
    existing: list[datetime] = field(default_factory=list)


def claim_overlap(overlap: BackfillOverlap) -> str:
    """The overlap a backfill's queued runs are claimed by (the `runs.overlap` column)."""
    return "allow" if overlap == BackfillOverlap.ALLOW else "queue"
