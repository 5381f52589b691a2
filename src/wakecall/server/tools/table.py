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
        "Schedule an action (cron, interval, once or daily times, in a zone, UTC by default) "
        "with retry, timeout, overlap and catch-up policies. Each run's result comes back as "
        "an event (get_events), a push and a signed POST to callback_url.",
    ),
    ToolEntry(
        "get_task",
        "tasks",
        "Get a task",
        "Show one of your tasks with its next fires, in its zone and in UTC.",
    ),
    ToolEntry(
        "list_tasks",
        "tasks",
        "List tasks",
        "List your tasks, oldest first, 20 a page; filter by status, name, kind or metadata.",
    ),
    ToolEntry(
        "patch_schedule",
        "tasks",
        "Change a task",
        "Change a task's fields (as create_task takes them): give only what changes, or list "
        "fields in `clear`; the next fire is recomputed.",
    ),
    ToolEntry(
        "pause",
        "tasks",
        "Pause a task",
        "Pause a task: nothing fires until resume. The note says why.",
    ),
    ToolEntry(
        "resume",
        "tasks",
        "Resume a task",
        "Resume a paused task from now; fires missed while paused are not replayed.",
    ),
    ToolEntry(
        "delete",
        "tasks",
        "Delete a task",
        "Delete a task and its runs (its events stay); a running run is cancelled.",
    ),
    ToolEntry(
        "run_now",
        "tasks",
        "Run a task now",
        "Run a task once now, also when paused; it does not count toward max_runs.",
    ),
    ToolEntry(
        "backfill",
        "tasks",
        "Backfill past fires",
        "Queue a run per past fire in [from,to), once each; max 1000.",
    ),
    ToolEntry(
        "list_runs",
        "events",
        "List runs",
        "Runs newest first, 20 a page: all yours or one task's, filtered by status.",
    ),
    ToolEntry(
        "schedule_wakeup",
        "wakeups",
        "Wake me later",
        "Be woken later: `in` (a delay) or `at` (an instant), a reason and any context you "
        "want back. It arrives as an event (get_events) and a push.",
    ),
    ToolEntry(
        "cancel_wakeup",
        "wakeups",
        "Cancel a wakeup",
        "Cancel a pending wakeup.",
    ),
    ToolEntry(
        "get_events",
        "events",
        "Read events",
        "Read your events (runs finished, wakeups fired, tasks expired) after a cursor, oldest "
        "first; `wait` holds the call until one arrives.",
    ),
    ToolEntry(
        "preview_schedule",
        "wakeups",
        "Preview a schedule",
        "Show a schedule's next fires in its zone and in UTC, with a description, creating "
        "nothing.",
    ),
    ToolEntry(
        "list_deliveries",
        "events",
        "List callback deliveries",
        "Your tasks' webhook callbacks, newest first: pending, delivered, or failed "
        "(dead-lettered).",
    ),
    ToolEntry(
        "redeliver",
        "events",
        "Send a callback again",
        "Send a callback delivery again now, with the same webhook-id.",
    ),
)
