"""Task files: an owner's tasks written down in TOML, applied to a store idempotently by id,
and written back out from it.

    [[tasks]]
    id = "nightly-report"              # the task's id: how a file finds its task again
    name = "nightly report"            # default: the id
    schedule = "0 2 * * *"             # text, or a table: {type = "daily", times = ["09:00"]}
    timezone = "Europe/Paris"          # default UTC
    enabled = true                     # false: the task is kept paused

    [tasks.action]                     # default: wake the agent with the task's name
    type = "webhook"
    url = "https://reports.example.com/run"

    [tasks.execution]
    timeout = "10m"
    retries = 2                        # retries after the first attempt
    retry_delay = "30s"
    overlap = "skip"

A task also takes `jitter`, `max_runs`, `expires_at`, `callback_url`, `metadata`,
`depends_on` (the id of the task it runs after: in the store or in the file), `trigger` (a
table: `per_minute`) and `condition` (a table: `url`, `method`, `timeout`); the execution
table also takes `retry_backoff`, `retry_max_delay`, `retry_jitter`, `max_queued`, `catchup`,
`catchup_window` and `pause_after_failures`. Every field means what it means in
`create_task`. Secrets are never in a file: a new task with a callback or a trigger is given
its secrets when applied.

Applying a file is declarative: each task it names ends up as the file says (a field the file
leaves out gets its default), created when its id is new, changed when it differs, left alone
when it is equal; with `prune`, the owner's other tasks are deleted. The whole file is checked,
every problem reported with its line, and then applied in one transaction: a file with any
problem, or one the store refuses (the owner's task limit, say), changes nothing, and a dry run
says exactly what the apply would do. Wakeups (`schedule_wakeup`) are an agent's own reminders,
not configuration: files neither name, export nor prune them.

- `format`: the keys and how they map to a `TaskSpec`;
- `reading`: reading and checking a file, with lines;
- `plan`: comparing it with the store and applying it;
- `report`: what an apply did;
- `export`: writing tasks back out.
"""

from __future__ import annotations

from wakecall.taskfile.export import export_tasks
from wakecall.taskfile.plan import apply_file, apply_tasks
from wakecall.taskfile.reading import FileTask, TaskFileError, load_task_file, parse_task_file
from wakecall.taskfile.report import ApplyReport, TaskChange

__all__ = [
    "ApplyReport",
    "FileTask",
    "TaskChange",
    "TaskFileError",
    "apply_file",
    "apply_tasks",
    "export_tasks",
    "load_task_file",
    "parse_task_file",
]
