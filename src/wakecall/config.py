"""The settings of the scheduler and of the task operations, with their defaults: the one
place they are written (`wakecall.settings` offers them as flags and variables).

A module of its own, light to import: `wakecall serve` reads its settings before anything
else of wakecall loads."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import timedelta

from wakecall.ids import new_id

__all__ = ["EngineConfig", "default_node_id"]


def default_node_id() -> str:
    """A node id unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_id('n')[-6:]}"


@dataclass(frozen=True)
class EngineConfig:
    node_id: str = field(default_factory=default_node_id)
    #: Runs executing at once on this node, over all tasks.
    concurrency: int = 64
    #: Due tasks claimed, and finished runs written, per transaction.
    batch_size: int = 500
    #: Longest sleep of the loop: bounds how late it notices changes made by other processes
    #: (the CLI, other nodes) that could not wake it directly.
    poll_interval: timedelta = timedelta(seconds=2)
    #: How long before a fire's instant the loop may record it: the run is written running
    #: then, and its action starts at the instant itself (a transaction no longer comes
    #: between the two). A pause or delete inside this lead no longer stops that fire.
    #: Tasks whose runs end as they are written (wakeups, `noop`) are never recorded early.
    fire_lead: timedelta = timedelta(milliseconds=10)
    #: How long a claim on a task or run holds without renewal.
    lease: timedelta = timedelta(seconds=30)
    #: A running run whose action gave no sign of life (a beat: its start, a command's
    #: output) for this long is reported stale (logged, and a `task.run.stale` event); None
    #: turns the check off.
    heartbeat_timeout: timedelta | None = timedelta(minutes=10)
    #: Also cancel a stale run's attempt (recorded as a timeout, retried per its policy).
    kill_stale: bool = False
    #: Shortest interval (and `@every`) a schedule may have.
    min_interval: timedelta = timedelta(seconds=1)
    #: Runs that `catchup = all` may replay after downtime.
    catchup_all_cap: int = 100
    #: Fires one backfill may queue (a longer range is refused, with where to split it).
    backfill_max_slots: int = 1000
    #: With `catchup = skip`, how late the only due fire may still be started.
    skip_grace: timedelta = timedelta(seconds=60)
    #: Bounds of `schedule_wakeup` delays; requests outside are clamped.
    wakeup_min: timedelta = timedelta(seconds=10)
    wakeup_max: timedelta = timedelta(days=30)
    #: Tasks (active or paused) one owner may hold.
    max_tasks_per_owner: int = 10_000
    #: New tasks (not wakeups) one owner may create in any minute (task files excepted).
    tasks_per_minute: int = 300
    #: New wakeups one owner may create in any minute.
    wakeups_per_minute: int = 60
    #: Sizes (bytes of JSON) one owner's task may hold.
    max_metadata_bytes: int = 16 * 1024
    max_context_bytes: int = 64 * 1024  # a wakeup's context
    max_body_bytes: int = 64 * 1024  # a webhook action's body
    max_headers_bytes: int = 16 * 1024  # a webhook action's headers, names and values
    #: A run's output beyond this is stored cut, with a note of its size.
    max_output_bytes: int = 64 * 1024
    #: After a callback secret is rotated, how long the old one keeps signing.
    secret_grace: timedelta = timedelta(hours=24)
    #: Retention: finished runs kept per task, and the age past which runs and events go.
    runs_per_task: int = 100
    run_max_age: timedelta = timedelta(days=30)
    event_max_age: timedelta = timedelta(days=7)
    #: A finished task (completed or expired) is pruned, with its runs, this long after it
    #: ended and its last run finished (unless a task depends on it).
    task_max_age: timedelta = timedelta(days=7)
    prune_every: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if not timedelta(0) <= self.fire_lead <= timedelta(seconds=1):
            raise ValueError("fire_lead must be between 0 and 1s")
        if self.lease < timedelta(seconds=1):
            raise ValueError("lease must be at least 1s")
