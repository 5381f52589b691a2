"""`wakecall runs`, `wakecall deliveries` and `wakecall redeliver`: what ran and what was sent.
Tables name each task by its name; ids given may be the start of one (`wakecall.cli.lookup`)."""

from __future__ import annotations

import argparse
from typing import Any

from wakecall.cli.context import Context, add_store_options
from wakecall.cli.lookup import delivery_id_of, task_id_of, task_names
from wakecall.cli.output import Cell, Column, compact, duration_ms, relative, utc_text
from wakecall.errors import InvalidInput, NotFound
from wakecall.models import Delivery, DeliveryStatus, RunStatus
from wakecall.server.views import delivery_view, run_view

__all__ = ["add_parsers"]


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "runs",
        help="run history, newest first: start, duration, status, attempt, output",
        description="Runs newest first: of one task, or of all the owner's tasks.",
    )
    p.add_argument("task_id", metavar="ID", nargs="?", help="a task id (default: every task)")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="at most N runs (20)")
    p.add_argument("--status", choices=[s.value for s in RunStatus])
    _common(p, run_runs)

    p = sub.add_parser(
        "deliveries",
        help="webhook callbacks: pending and dead-lettered (failed) ones",
        description=(
            "Callback deliveries, newest first. By default the pending ones (being retried) "
            "and the failed ones (dead-lettered); --status picks one kind, or all."
        ),
    )
    p.add_argument("--status", choices=["pending", "failed", "delivered", "all"])
    p.add_argument("--task", dest="task_id", metavar="ID", help="only this task's deliveries")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="at most N (50)")
    _common(p, run_deliveries)

    p = sub.add_parser(
        "redeliver",
        help="send a callback delivery again (e.g. a dead-lettered one)",
        description=(
            "Queue a delivery again, now, with a fresh attempt count and the same webhook-id; "
            "a running `wakecall serve` on this store sends it."
        ),
    )
    p.add_argument("delivery_id", metavar="ID")
    _common(p, run_redeliver)


def _common(p: argparse.ArgumentParser, handler: Any) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")
    add_store_options(p)
    p.set_defaults(handler=handler, create=False)


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= 1000:
        raise InvalidInput(f"--limit must be from 1 to 1000, got {limit}", field="--limit")


async def run_runs(ctx: Context, args: argparse.Namespace) -> int:
    _check_limit(args.limit)
    task_id = None if args.task_id is None else await task_id_of(ctx, args.task_id)
    runs = await ctx.service.list_runs(
        ctx.owner,
        task_id=task_id,
        status=None if args.status is None else RunStatus(args.status),
        limit=args.limit,
    )
    if ctx.out.json_mode:
        ctx.out.json(
            {"owner": ctx.owner, "runs": [run_view(r).model_dump(mode="json") for r in runs]}
        )
        return 0
    now = ctx.now()
    names = {} if task_id else await task_names(ctx, {run.task_id for run in runs})
    rows: list[list[Cell]] = []
    for run in runs:
        status = str(run.status)
        if status == "queued" and run.started_at is None:
            started = f"due {relative(run.due_at, now)}"
        elif run.started_at is None:
            started = "-"
        else:  # a person reads how long ago; a program gets the instant
            started = relative(run.started_at, now) if ctx.out.tty else utc_text(run.started_at)
        output = run.error_message if run.error_message else compact(run.output)
        rows.append(
            [
                run.id,
                *([] if task_id else [names.get(run.task_id, run.task_id)]),
                started,
                duration_ms(run.duration_ms),
                ctx.out.status(status),
                f"{run.attempt}/{run.max_attempts}",
                str(run.trigger),
                (output, "red" if run.error_message else ""),
            ]
        )
    if not rows and ctx.out.tty:
        ctx.out.line("no runs yet")
        return 0
    columns = RUN_COLUMNS if task_id else [*RUN_COLUMNS[:1], TASK_COLUMN, *RUN_COLUMNS[1:]]
    ctx.out.table(columns, rows)
    return 0


TASK_COLUMN = Column("TASK", "cut", min_width=10)
RUN_COLUMNS = [
    Column("RUN", "id"),
    Column("STARTED"),
    Column("DURATION"),
    Column("STATUS"),
    Column("ATTEMPT", optional=True),
    Column("TRIGGER", optional=True),
    Column("OUTPUT", "cut", min_width=12),
]


async def run_deliveries(ctx: Context, args: argparse.Namespace) -> int:
    _check_limit(args.limit)
    if args.status == "all":
        statuses: list[DeliveryStatus | None] = [None]
    elif args.status is not None:
        statuses = [DeliveryStatus(args.status)]
    else:
        statuses = [DeliveryStatus.PENDING, DeliveryStatus.FAILED]
    task_id = None if args.task_id is None else await task_id_of(ctx, args.task_id, missing_ok=True)
    found: list[Delivery] = []
    for status in statuses:
        found += await ctx.service.list_deliveries(
            ctx.owner, status=status, task_id=task_id, limit=args.limit
        )
    found = sorted(found, key=lambda d: d.id, reverse=True)[: args.limit]
    if ctx.out.json_mode:
        ctx.out.json(
            {
                "owner": ctx.owner,
                "deliveries": [delivery_view(d).model_dump(mode="json") for d in found],
            }
        )
        return 0
    now = ctx.now()
    names = await task_names(ctx, {d.task_id for d in found if d.task_id})
    rows: list[list[Cell]] = []
    for d in found:
        if d.status == DeliveryStatus.PENDING:
            state = f"due {relative(d.next_attempt_at, now)}"
        elif d.status == DeliveryStatus.DELIVERED:
            state = f"delivered {relative(d.delivered_at, now)}"
        else:
            state = "dead-lettered"
        last = d.last_error or (f"HTTP {d.last_status}" if d.last_status is not None else "")
        rows.append(
            [
                d.id,
                names.get(d.task_id, d.task_id) if d.task_id else "-",
                str(d.event_type),
                ctx.out.status(str(d.status)),
                str(d.attempts),
                state,
                (compact(last), "red" if d.status == DeliveryStatus.FAILED else ""),
                d.url,
            ]
        )
    if not rows and ctx.out.tty:
        ctx.out.line("no deliveries" if args.status else "no pending or failed deliveries")
        return 0
    ctx.out.table(DELIVERY_COLUMNS, rows)
    return 0


DELIVERY_COLUMNS = [
    Column("ID", "id"),
    TASK_COLUMN,
    Column("EVENT", "cut", min_width=12, optional=True),
    Column("STATUS"),
    Column("ATTEMPTS", optional=True),
    Column("STATE", "cut", min_width=12),
    Column("LAST RESULT", "cut", min_width=12),
    Column("URL", "cut", min_width=12, optional=True),
]


async def run_redeliver(ctx: Context, args: argparse.Namespace) -> int:
    try:
        delivery = await ctx.service.redeliver(ctx.owner, args.delivery_id)
    except NotFound:  # not an id: the start of one?
        delivery_id = await delivery_id_of(ctx, args.delivery_id)
        delivery = await ctx.service.redeliver(ctx.owner, delivery_id)
    if ctx.out.json_mode:
        ctx.out.json(delivery_view(delivery).model_dump(mode="json"))
    else:
        ctx.out.line(
            f"queued {delivery.id} ({delivery.event_type} to {delivery.url}) again; a running "
            "`wakecall serve` on this store sends it"
        )
    return 0
