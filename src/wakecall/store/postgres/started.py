"""The runs a `PostgresStore` started and has not finished yet, as it read them."""

from __future__ import annotations

from typing import NamedTuple

from wakecall.models import Run, Task


class _Started(NamedTuple):
    """A run as `start_due_runs` wrote it for `node`, with its task as read then, and both
    rows' `xmin` (the transaction that wrote the version read)."""

    node: str
    run: Run
    task: Task
    run_xmin: str
    task_xmin: str


_STARTED_MAX = 16384
