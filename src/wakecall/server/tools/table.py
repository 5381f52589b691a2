"""Every tool the server offers: its name, title and description (what the model reads), and
the method that answers it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TOOLS", "ToolEntry"]


@dataclass(frozen=True)
class ToolEntry:
    name: str
    #: Which tool class answers it (`tasks`, `events`, `wakeups`); the method has the name.
    home: str
    title: str
    description: str


TOOLS: tuple[ToolEntry, ...] = (
    ToolEntry(
        "create_task",
        "tasks",
        "Create a scheduled task",
        "Create a task: a schedule plus an action, with retry, timeout, overlap and catch-up "
        "policies. The time zone defaults to UTC. Each run's result comes back as an event "
        "(get_events), a push to live sessions, and a signed callback to callback_url. "
        "A task may instead run after each success of another (depends_on, no schedule "
        "needed) or on inbound HTTP events (trigger). "
        'Example: {"name": "standup reminder", "schedule": "0 9 * * MON-FRI", '
        '"timezone": "America/New_York", "action": {"type": "wakeup", "reason": "post the '
        'standup summary"}}',
    ),
    ToolEntry(
        "get_task",
        "tasks",
        "Get a task",
        'Show one of your tasks with its next fires. Example: {"task_id": "tsk_01…"}',
    ),
    ToolEntry(
        "list_tasks",
        "tasks",
        "List tasks",
        "List your tasks, oldest first, 20 a page; filter by status (active, paused, "
        "completed, expired), name (substring), kind (task, wakeup) or metadata (all given "
        'keys equal). Example: {"status": "active", "metadata": {"team": "ops"}}',
    ),
    ToolEntry(
        "patch_schedule",
        "tasks",
        "Change a task",
        "Change any mutable field of a task (not only its schedule); the next fire is "
        "recomputed at once. Give only what changes; `clear` resets fields to their "
        "defaults (e.g. ['max_runs', 'timeout']). Example: "
        '{"task_id": "tsk_01…", "schedule": "*/5 * * * *"}',
    ),
    ToolEntry(
        "pause",
        "tasks",
        "Pause a task",
        'Pause a task; no fires until resume. Example: {"task_id": "tsk_01…", '
        '"note": "vendor API down"}',
    ),
    ToolEntry(
        "resume",
        "tasks",
        "Resume a task",
        "Resume a paused task from now: fires missed while paused are not replayed. "
        'Example: {"task_id": "tsk_01…"}',
    ),
    ToolEntry(
        "delete",
        "tasks",
        "Delete a task",
        "Delete a task and its run history (its events stay readable); a running run is "
        'cancelled. Example: {"task_id": "tsk_01…"}',
    ),
    ToolEntry(
        "run_now",
        "tasks",
        "Run a task now",
        "Queue a manual run of a task at once (also when paused); it does not count toward "
        'max_runs. Example: {"task_id": "tsk_01…"}',
    ),
    ToolEntry(
        "list_runs",
        "events",
        "List runs",
        "Runs newest first, 20 a page: all yours, or one task's; filter by status "
        "(queued, running, success, failure, timeout, cancelled, skipped, missed). "
        'Example: {"task_id": "tsk_01…", "status": "failure"}',
    ),
    ToolEntry(
        "schedule_wakeup",
        "wakeups",
        "Wake me later",
        "Schedule a durable one-shot that wakes you: give `in` (a delay) or `at` (an "
        "instant), a reason, and any JSON context you want back at wake time. Delays are "
        "kept between the server's bounds (default 10s to 30d). "
        'Example: {"in": "15m", "reason": "check the deploy", "context": {"pr": 42}}',
    ),
    ToolEntry(
        "cancel_wakeup",
        "wakeups",
        "Cancel a wakeup",
        'Cancel a pending wakeup. Example: {"wakeup_id": "tsk_01…"}',
    ),
    ToolEntry(
        "get_events",
        "events",
        "Read events",
        "Read your events (run completed/failed/missed, task expired, wakeup fired) after a "
        "cursor, oldest first. With `wait` (seconds), hold the call until the next event "
        "arrives or the wait ends (long poll). Without `after`, continues from the last "
        'cursor you read. Example: {"after": 41, "wait": 30}',
    ),
    ToolEntry(
        "preview_schedule",
        "wakeups",
        "Preview a schedule",
        "Show the next fires of a schedule in its time zone and in UTC, with a description, "
        'without creating anything. Example: {"schedule": "0 9 * * MON-FRI", '
        '"timezone": "America/New_York", "count": 5}',
    ),
    ToolEntry(
        "list_deliveries",
        "events",
        "List callback deliveries",
        "Webhook callbacks of your tasks, newest first: pending (being retried), delivered, "
        'or failed (dead-lettered, see last_error). Example: {"status": "failed"}',
    ),
    ToolEntry(
        "redeliver",
        "events",
        "Send a callback again",
        "Queue a callback delivery again now (for example a dead-lettered one after the "
        'receiver is fixed); same webhook-id. Example: {"delivery_id": "msg_01…"}',
    ),
)
