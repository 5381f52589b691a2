"""Changes to an owner's tasks, written together by `Store.write_tasks`: all of them in one
transaction, or none.

`TaskService` makes every change to tasks this way (one write for one tool call, many for a
task file), so that the owner's task limit, a new task's id and signing secret, and a change
made on a task another caller changed meanwhile are all judged in the transaction that writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wakecall.errors import LimitReached
from wakecall.models import Task, TaskStatus

__all__ = [
    "NewTask",
    "OwnerLimits",
    "TaskDeletion",
    "TaskUpdate",
    "TaskWrite",
    "TaskWritten",
    "live_tasks_added",
    "live_tasks_removed",
]


@dataclass(frozen=True, slots=True)
class NewTask:
    """Insert `task`. When the owner already has a task with the same non-null
    `idempotency_key`, that task is the answer and nothing is written; a task (of any owner)
    with the same id is a `Conflict`."""

    task: Task
    #: The first signing secret of the task's callbacks.
    callback_secret: str | None = None


@dataclass(frozen=True, slots=True)
class TaskUpdate:
    """Set the given `Task` fields (not id, owner, created_at, claims) and `updated_at`."""

    task_id: str
    changes: Mapping[str, Any] = field(default_factory=dict)
    #: The task's status as the caller saw it: a task whose status changed since (a fire
    #: ended it, another caller paused it) is a `Conflict` (None: no such check).
    seen_status: TaskStatus | None = None
    #: A new signing secret for the task's callbacks; the older ones stop signing at
    #: `retire_secrets_at` (None: at once).
    callback_secret: str | None = None
    retire_secrets_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TaskDeletion:
    """Delete the task with its runs and attempts (its events stay in the log)."""

    task_id: str


TaskWrite = NewTask | TaskUpdate | TaskDeletion


@dataclass(frozen=True, slots=True)
class OwnerLimits:
    """The limits `Store.write_tasks` judges inside its transaction (None: no such limit)."""

    #: Live (active or paused) tasks the owner may hold.
    max_tasks: int | None = None
    #: New tasks (not wakeups) the owner may create in any 60 seconds.
    tasks_per_minute: int | None = None
    #: New wakeups the owner may create in any 60 seconds.
    wakeups_per_minute: int | None = None

    def per_minute(self, kind: str) -> int | None:
        return self.wakeups_per_minute if kind == "wakeup" else self.tasks_per_minute

    def limits_new_tasks(self) -> bool:
        return any(
            x is not None for x in (self.max_tasks, self.tasks_per_minute, self.wakeups_per_minute)
        )


@dataclass(frozen=True, slots=True)
class TaskWritten:
    """What one write did."""

    #: The task after the write (the existing one for a `NewTask` answered by its key); None
    #: for a deletion.
    task: Task | None
    #: A `NewTask` that was inserted (not answered by its idempotency key).
    created: bool = False
    #: A deletion: the ids of the task's runs that were running.
    running: tuple[str, ...] = ()
    #: A deletion: the task was live (active or paused) before.
    was_live: bool = False


def live_tasks_added(written: list[TaskWritten]) -> int:
    """Live tasks the writes inserted."""
    return sum(1 for w in written if w.created and w.task is not None and _live(w.task))


def live_tasks_removed(written: list[TaskWritten]) -> int:
    """Live tasks the writes deleted."""
    return sum(1 for w in written if w.task is None and w.was_live)


def _live(task: Task) -> bool:
    return task.status in (TaskStatus.ACTIVE, TaskStatus.PAUSED)


def created_by_kind(written: list[TaskWritten]) -> dict[str, int]:
    """How many tasks of each kind the writes inserted."""
    counts: dict[str, int] = {}
    for w in written:
        if w.created and w.task is not None:
            counts[w.task.kind] = counts.get(w.task.kind, 0) + 1
    return counts


def rated_creations(limits: OwnerLimits, written: list[TaskWritten]) -> dict[str, int]:
    """How many tasks of each kind the writes inserted, of the kinds a per-minute limit
    holds: only those are recorded and counted. Creations made without one (an operator's
    task file) do not count against the owner's later ones."""
    return {
        kind: count
        for kind, count in created_by_kind(written).items()
        if limits.per_minute(kind) is not None
    }


def over_limits(
    limits: OwnerLimits, live: int, written: list[TaskWritten], recent: dict[str, int]
) -> LimitReached | None:
    """The limit the writes break, given the owner's `live` tasks after them and `recent`
    creations by kind in the last minute (theirs included); None when they break none."""
    if (
        limits.max_tasks is not None
        and live > limits.max_tasks
        and live_tasks_added(written) > live_tasks_removed(written)
    ):
        return LimitReached(
            f"the owner would hold {live} tasks; at most {limits.max_tasks}",
            limit="max_tasks",
            allowed=limits.max_tasks,
        )
    for kind, count in recent.items():
        allowed = limits.per_minute(kind)
        if allowed is not None and count > allowed:
            name = "wakeups_per_minute" if kind == "wakeup" else "tasks_per_minute"
            return LimitReached(
                f"the owner would have created {count} {kind}s in the last minute; at most "
                f"{allowed}",
                limit=name,
                allowed=allowed,
            )
    return None
