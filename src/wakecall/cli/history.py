"""`wakecall runs`, `wakecall deliveries` and `wakecall redeliver`: what ran and what was sent."""

from __future__ import annotations

import argparse
from typing import Any

from wakecall.cli.context import Context, add_store_options
from wakecall.cli.output import Cell, compact, duration_ms, relative, utc_text
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
    runs = await ctx.store.list_runs(
        ctx.owner,
        task_id=args.task_id,
        status=None if args.status is None else RunStatus(args.status),
        limit=args.limit,
    )
    if ctx.out.json_mode:
        ctx.out.json(
            {"owner": ctx.owner, "runs": [run_view(r).model_dump(mode="json") for r in runs]}
        )
        return 0
    now = ctx.now()
    headers = ["RUN", *([] if args.task_id else ["TASK"]), "STARTED", "DURATION", "STATUS"]
    headers += ["ATTEMPT", "TRIGGER", "OUTPUT"]
    rows: list[list[Cell]] = []
    for run in runs:
        status = str(run.status)
        if run.started_at is not None:
            started = utc_text(run.started_at)
        elif status == "queued":
            started = f"due {relative(run.due_at, now)}"
        else:
            started = "-"
        output = run.error_message if run.error_message else compact(run.output)
        rows.append(
            [
                run.id,
                *([] if args.task_id else [run.task_id]),
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
    ctx.out.table(headers, rows)
    return 0


async def run_deliveries(ctx: Context, args: argparse.Namespace) -> int:

    _check_limit(args.limit)
    if args.status == "all":
        statuses: list[DeliveryStatus | None] = [None]
    elif args.status is not None:
        statuses = [DeliveryStatus(args.status)]
    else:
        statuses = [DeliveryStatus.PENDING, DeliveryStatus.FAILED]
    found: list[Delivery] = []
    for status in statuses:
        found += await ctx.store.list_deliveries(
            ctx.owner, status=status, task_id=args.task_id, limit=args.limit
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
    rows: list[list[Cell]] = []
    for d in found:
        if d.status == DeliveryStatus.PENDING:
            state = f"next attempt {relative(d.next_attempt_at, now)}"
        elif d.status == DeliveryStatus.DELIVERED:
            state = f"delivered {relative(d.delivered_at, now)}"
        else:
            state = "dead-lettered"
        last = d.last_error or (f"HTTP {d.last_status}" if d.last_status is not None else "")
        rows.append(
            [
                d.id,
                d.task_id or "-",
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
    headers = ["ID", "TASK", "EVENT", "STATUS", "ATTEMPTS", "STATE", "LAST RESULT", "URL"]
    ctx.out.table(headers, rows)
    return 0


async def run_redeliver(ctx: Context, args: argparse.Namespace) -> int:

    try:
        delivery = await ctx.store.redeliver(ctx.owner, args.delivery_id, ctx.now())
    except NotFound:
        raise NotFound(
            f"no delivery with id {args.delivery_id!r} for owner {ctx.owner!r}; "
            "`wakecall deliveries --status all` shows them"
        ) from None
    if ctx.out.json_mode:
        ctx.out.json(delivery_view(delivery).model_dump(mode="json"))
    else:
        ctx.out.line(
            f"queued {delivery.id} ({delivery.event_type} to {delivery.url}) again; a running "
            "`wakecall serve` on this store sends it"
        )
    return 0
