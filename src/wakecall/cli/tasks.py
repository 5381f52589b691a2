"""`wakecall tasks ...`: list, show, add, patch, pause, resume, delete and run tasks. An id
given to a command may be the start of one (see `wakecall.cli.lookup`)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from wakecall.cli.context import EXIT_ERROR, Context, add_store_options
from wakecall.cli.lookup import task_id_of
from wakecall.cli.output import Cell, Column, local_text, relative, short_schedule, utc_text
from wakecall.cli.task_flags import CLEARABLE, add_fields, add_task_options, patch_fields
from wakecall.cli.task_show import (
    action_text,
    failures_text,
    last_run,
    last_run_text,
    overlap_text,
    retry_text,
    runs_text,
    show_task,
)
from wakecall.errors import InvalidInput
from wakecall.models import Action, Task, TaskPatch, TaskSpec, TaskStatus
from wakecall.schedules import format_duration
from wakecall.server.views import backfill_view, next_fires, run_view, task_view

__all__ = ["add_parsers"]


# --- parsers ----------------------------------------------------------------------------
def add_parsers(sub: Any) -> None:
    tasks = sub.add_parser(
        "tasks",
        help="list, show, add, change, pause, resume, delete and run tasks",
        description="Work with an owner's tasks in the store a server uses.",
    )
    commands = tasks.add_subparsers(dest="tasks_command", required=True, metavar="COMMAND")

    p = commands.add_parser(
        "list",
        help="a table of the tasks: schedule, zone, status, last and next run",
        description="The owner's tasks, oldest first.",
    )
    p.add_argument("--status", choices=[s.value for s in TaskStatus])
    p.add_argument("--name", help="only tasks whose name contains this (any case)")
    p.add_argument("--kind", choices=["task", "wakeup"])
    _common(p, run_list)

    p = commands.add_parser("show", help="one task in full, with its next fires")
    p.add_argument("task_id", metavar="ID")
    _common(p, run_show)

    p = commands.add_parser(
        "add",
        usage="%(prog)s NAME SCHEDULE [options]",
        help="create a task",
        description=(
            "Create a task, checked as create_task checks it. SCHEDULE is a cron expression "
            "('0 9 * * MON-FRI', '@daily'), '@every 30m', 'in 5m', an ISO-8601 instant, or a "
            'JSON object such as \'{"type": "daily", "times": ["09:00"]}\'. Durations are '
            "written '30s', '5m', '1h30m'."
        ),
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("schedule", metavar="SCHEDULE")
    p.add_argument(
        "--id", dest="task_id", metavar="ID", help="the task's id (default: a new tsk_ id)"
    )
    p.add_argument("--paused", action="store_true", help="create it paused")
    p.add_argument(
        "--idempotency-key", help="a repeated add with the same key returns the first task"
    )
    add_task_options(p, patch=False)
    _common(p, run_add, create=True)

    p = commands.add_parser(
        "patch",
        usage="%(prog)s ID [options]",
        help="change a task's fields",
        description="Change any mutable field of a task; the next fire is recomputed at once.",
    )
    p.add_argument("task_id", metavar="ID")
    p.add_argument("--name")
    p.add_argument("--schedule", help="a new schedule (see `tasks add`)")
    add_task_options(p, patch=True)
    p.add_argument(
        "--clear",
        action="append",
        choices=CLEARABLE,
        default=[],
        help="reset a field to its default (repeatable)",
    )
    p.add_argument(
        "--rotate-callback-secret",
        action="store_true",
        help="issue a new callback signing secret (shown once); the old one signs for a while",
    )
    _common(p, run_patch)

    p = commands.add_parser("pause", help="pause a task (no fires until resumed)")
    p.add_argument("task_id", metavar="ID")
    p.add_argument("--note", help="why (shown with the task)")
    _common(p, run_pause)

    p = commands.add_parser("resume", help="resume a task from now (missed fires are not replayed)")
    p.add_argument("task_id", metavar="ID")
    _common(p, run_resume)

    p = commands.add_parser("delete", help="delete a task and its runs (its events stay)")
    p.add_argument("task_id", metavar="ID")
    _common(p, run_delete)

    p = commands.add_parser(
        "run",
        help="queue a manual run now (--dry-run: show what would run)",
        description=(
            "Queue a manual run of the task at once (also when paused); it does not count "
            "toward max_runs. A running `wakecall serve` on the same store executes it. "
            "With --dry-run, show the action as it would run, the policies and the next "
            "fires, and queue nothing."
        ),
    )
    p.add_argument("task_id", metavar="ID")
    p.add_argument("--dry-run", action="store_true", help="show what would run; change nothing")
    _common(p, run_run)

    p = commands.add_parser(
        "backfill",
        help="queue runs for the task's fires in a past range",
        description=(
            "Queue a run (trigger backfill) for each fire of the task's schedule in [--from, "
            "--to), as its schedule and zone compute them; --to may not be in the future. At "
            "most 1,000 fires a call; a fire backfilled before is not queued again. Also for "
            "a paused task. A running `wakecall serve` on the same store executes the runs."
        ),
    )
    p.add_argument("task_id", metavar="ID")
    p.add_argument("--from", dest="start", required=True, metavar="INSTANT", type=_instant)
    p.add_argument("--to", dest="end", required=True, metavar="INSTANT", type=_instant)
    p.add_argument(
        "--overlap",
        choices=["queue", "skip", "allow"],
        default="queue",
        help="queue: one after another (default); allow: side by side; skip: see the README",
    )
    p.add_argument("--dry-run", action="store_true", help="list the fires; queue nothing")
    _common(p, run_backfill)


def _instant(text: str) -> datetime:
    """An ISO-8601 instant with its UTC offset."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        yesterday = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
        example = yesterday.isoformat().replace("+00:00", "Z")
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an instant with a UTC offset, e.g. {example}"
        )
    return moment


def _common(p: argparse.ArgumentParser, handler: Any, *, create: bool = False) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")
    add_store_options(p)
    p.set_defaults(handler=handler, create=create)


# --- commands ---------------------------------------------------------------------------
async def run_list(ctx: Context, args: argparse.Namespace) -> int:
    tasks = await ctx.service.list_all(
        ctx.owner,
        kind=args.kind,
        status=None if args.status is None else TaskStatus(args.status),
        name_contains=args.name,
    )
    last = {t.id: await last_run(ctx, t) for t in tasks}
    now = ctx.now()
    if ctx.out.json_mode:
        ctx.out.json(
            {
                "owner": ctx.owner,
                "tasks": [
                    {
                        **task_view(t).model_dump(mode="json"),
                        "last_run": None
                        if last[t.id] is None
                        else run_view(last[t.id]).model_dump(mode="json"),  # type: ignore[arg-type]
                    }
                    for t in tasks
                ],
            }
        )
        return 0
    rows: list[list[Cell]] = []
    for t in tasks:
        next_run = relative(t.next_fire_at, now) if t.status == TaskStatus.ACTIVE else "-"
        rows.append(
            [
                t.id,
                t.name,
                short_schedule(t.schedule),
                t.timezone,
                ctx.out.status(str(t.status)),
                last_run_text(last[t.id], now, ctx.out),
                next_run,
            ]
        )
    if not rows and ctx.out.tty:
        ctx.out.line(f"no tasks for owner {ctx.owner!r}")
        return 0
    ctx.out.table(LIST_COLUMNS, rows)
    return 0


LIST_COLUMNS = [
    Column("ID", "id"),
    Column("NAME", "cut", min_width=10),
    Column("SCHEDULE", "cut", min_width=9),
    Column("ZONE", "cut", min_width=6),
    Column("STATUS"),
    Column("LAST RUN", "cut", min_width=10),
    Column("NEXT RUN"),
]


async def run_show(ctx: Context, args: argparse.Namespace) -> int:
    task = await ctx.service.get(ctx.owner, await task_id_of(ctx, args.task_id))
    await show_task(ctx, task)
    return 0


async def run_add(ctx: Context, args: argparse.Namespace) -> int:
    if args.depends_on is not None:
        args.depends_on = await task_id_of(ctx, args.depends_on, missing_ok=True)
    fields = add_fields(args)
    spec = TaskSpec.model_validate(fields)
    made = await ctx.service.create(ctx.owner, spec, task_id=args.task_id)
    task, created = made.task, made.created
    secret, trigger_secret = made.callback_secret, made.trigger_secret
    if not ctx.out.json_mode:
        if created:
            ctx.out.line(f"created {task.id} ({task.name})")
        else:
            ctx.out.line(f"{task.id} ({task.name}) exists already with this idempotency key")
    await show_task(
        ctx, task, created=created, callback_secret=secret, trigger_secret=trigger_secret
    )
    return 0


async def run_patch(ctx: Context, args: argparse.Namespace) -> int:
    task_id = await task_id_of(ctx, args.task_id)
    before = await ctx.service.get(ctx.owner, task_id)
    if args.depends_on is not None:
        args.depends_on = await task_id_of(ctx, args.depends_on, missing_ok=True)
    given = patch_fields(args, before)
    patch = TaskPatch.model_validate(given)
    changed = await ctx.service.patch(
        ctx.owner, task_id, patch, rotate_callback_secret=args.rotate_callback_secret
    )
    task = changed.task
    if not ctx.out.json_mode:
        names = ", ".join(sorted(given)) or "callback secret"
        ctx.out.line(f"changed {task.id} ({task.name}): {names}")
    await show_task(
        ctx,
        task,
        callback_secret=changed.callback_secret,
        trigger_secret=changed.trigger_secret,
    )
    return 0


async def run_pause(ctx: Context, args: argparse.Namespace) -> int:
    task = await ctx.service.pause(ctx.owner, await task_id_of(ctx, args.task_id), args.note)
    return await _done(ctx, task, "paused")


async def run_resume(ctx: Context, args: argparse.Namespace) -> int:
    task = await ctx.service.resume(ctx.owner, await task_id_of(ctx, args.task_id))
    return await _done(ctx, task, "resumed")


async def _done(ctx: Context, task: Task, verb: str) -> int:
    if ctx.out.json_mode:
        await show_task(ctx, task)
        return 0
    text = f"{verb} {task.id} ({task.name})"
    if task.next_fire_at is not None:
        when = relative(task.next_fire_at, ctx.now())
        text += f"; next fire {when} ({utc_text(task.next_fire_at)})"
    ctx.out.line(text)
    return 0


async def run_delete(ctx: Context, args: argparse.Namespace) -> int:
    task = await ctx.service.get(ctx.owner, await task_id_of(ctx, args.task_id))
    await ctx.service.delete(ctx.owner, task.id)
    if ctx.out.json_mode:
        ctx.out.json({"deleted": True, "id": task.id})
    else:
        ctx.out.line(f"deleted {task.id} ({task.name})")
    return 0


async def run_run(ctx: Context, args: argparse.Namespace) -> int:
    task = await ctx.service.get(ctx.owner, await task_id_of(ctx, args.task_id))
    if args.dry_run:
        return await _dry_run(ctx, task)
    run = await ctx.service.run_now(ctx.owner, task.id)
    if ctx.out.json_mode:
        ctx.out.json(run_view(run).model_dump(mode="json"))
    else:
        ctx.out.line(
            f"queued {run.id}: a manual run of {task.id} ({task.name}); a running `wakecall "
            f"serve` on this store executes it (`wakecall runs {task.id}` shows how it went)"
        )
    return 0


async def run_backfill(ctx: Context, args: argparse.Namespace) -> int:
    task_id = await task_id_of(ctx, args.task_id)
    receipt = await ctx.service.backfill(
        ctx.owner,
        task_id,
        start=args.start,
        end=args.end,
        overlap=args.overlap,
        dry_run=args.dry_run,
    )
    view = backfill_view(receipt)
    if ctx.out.json_mode:
        ctx.out.json(view.model_dump(mode="json"))
        return 0
    verb = "would queue" if receipt.dry_run else "queued"
    ctx.out.line(
        f"{receipt.task.id} ({receipt.task.name}): {view.fires} fires in the range; {verb} "
        f"{view.queued}, skipped {view.skipped}, {view.already_backfilled} backfilled before"
    )
    for slot in view.slots or []:
        ctx.out.line(f"  {local_text(slot)}  {utc_text(slot)}")
    return 0


async def _dry_run(ctx: Context, task: Task) -> int:
    now = ctx.now()
    refused: str | None = None
    if task.status in (TaskStatus.COMPLETED, TaskStatus.EXPIRED):
        refused = f"task {task.id} has ended ({task.status}); it cannot run again"
    admitted: str | None = None
    resolved: str | None = None
    try:
        resolved = ctx.service.policy.check_action(TypeAdapter(Action).validate_python(task.action))
    except InvalidInput as exc:
        admitted = str(exc)
    fires = next_fires(task, count=5)
    policies = {
        "retry": task.retry.model_dump(mode="json"),
        "timeout_s": task.timeout_s,
        "overlap": str(task.overlap),
        "max_queued": task.max_queued,
        "catchup": str(task.catchup),
        "catchup_window_s": task.catchup_window_s,
        "max_runs": task.max_runs,
        "run_count": task.run_count,
        "pause_after_failures": task.pause_after_failures,
        "expires_at": task.expires_at,
    }
    if ctx.out.json_mode:
        ctx.out.json(
            {
                "dry_run": True,
                "task_id": task.id,
                "name": task.name,
                "status": str(task.status),
                "would_queue": refused is None,
                "refused": refused,
                "action": task.action,
                "resolved_executable": resolved,
                "action_refused": admitted,
                "policies": policies,
                "next_fires": [f.model_dump(mode="json") for f in fires],
            }
        )
        return EXIT_ERROR if refused else 0
    out = ctx.out
    verdict: Cell = (
        ("no: " + refused, "red") if refused else ("yes: a manual run, queued at once", "green")
    )
    pairs: list[tuple[str, Cell | list[Cell]]] = [
        ("task", f"{task.id} ({task.name}), {task.status}"),
        ("would run", verdict),
        ("action", action_text(task.action)),
    ]
    if resolved:
        pairs.append(("executable", resolved))
    if admitted:
        pairs.append(("refused by settings", (admitted, "red")))
    pairs += [
        ("retry", retry_text(task.retry)),
        (
            "timeout",
            f"{format_duration(timedelta(seconds=task.timeout_s))} per attempt"
            if task.timeout_s is not None
            else "none",
        ),
        ("overlap", overlap_text(task)),
        ("pause after", failures_text(task)),
        ("max runs", runs_text(task) + "; a manual run does not count"),
        (
            "next fires",
            [f"{local_text(f.local)}  ({relative(f.utc, now)})" for f in fires],
        ),
    ]
    out.fields(pairs)
    out.line("dry run: nothing was queued")
    return EXIT_ERROR if refused else 0
