"""`wakecall apply FILE` and `wakecall export`: task files (see `wakecall.taskfile`)."""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tomllib
from datetime import UTC
from typing import Any

import anyio

from wakecall.cli.context import Context, add_store_options
from wakecall.errors import InvalidInput
from wakecall.taskfile import apply_file, export_tasks

__all__ = ["add_parsers"]

FORMAT_HELP = """\
A task file is TOML, one [[tasks]] table per task:

  [[tasks]]
  id = "nightly-report"          # how the file finds its task again
  name = "nightly report"        # default: the id
  schedule = "0 2 * * *"         # or a table: {type = "daily", times = ["09:00"]}
  timezone = "Europe/Paris"      # default UTC
  enabled = true                 # false: kept paused
  # also: jitter, max_runs, expires_at, callback_url, metadata

  [tasks.action]                 # default: wake the agent with the task's name
  type = "webhook"               # noop | wakeup | webhook | command
  url = "https://reports.example.com/run"

  [tasks.execution]
  timeout = "10m"
  retries = 2                    # retries after the first attempt
  retry_delay = "30s"
  overlap = "skip"               # skip | queue | cancel_previous | allow
  pause_after_failures = 3       # pause after 3 failed runs in a row (0: never)
  # also: retry_backoff, retry_max_delay, retry_jitter, max_queued, catchup, catchup_window
"""


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "apply",
        help="make the owner's tasks match a task file (idempotent by id)",
        description=(
            "Create the file's tasks that do not exist, change those that differ and leave the "
            "others; each line of the answer says which (+ created, ~ changed, = unchanged, "
            "- deleted). A field the file leaves out gets its default. The whole file is "
            "checked first: with any problem, nothing is applied."
        ),
        epilog=FORMAT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE", help="the task file (TOML)")
    p.add_argument(
        "--prune", action="store_true", help="delete the owner's tasks the file does not name"
    )
    p.add_argument("--dry-run", action="store_true", help="show the plan; change nothing")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_store_options(p)
    p.set_defaults(handler=run_apply, create=True)

    p = sub.add_parser(
        "export",
        help="write the owner's tasks as a task file",
        description=(
            "Write the owner's tasks (wakeups left out) as a task file; applying it to the "
            "same store changes nothing."
        ),
        epilog=FORMAT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    p.add_argument(
        "--json", action="store_true", help="the same tables as JSON (apply reads TOML only)"
    )
    add_store_options(p)
    p.set_defaults(handler=run_export, create=False)


async def run_apply(ctx: Context, args: argparse.Namespace) -> int:
    # A command that ends when the file is applied makes no garbage in cycles worth collecting
    # (a 100,000-task file: about a quarter of the time went on the cycle collector).
    gc.disable()
    report = await apply_file(
        ctx.service, ctx.owner, args.file, prune=args.prune, dry_run=args.dry_run
    )
    if ctx.out.json_mode:
        ctx.out.json(report.to_json())
        return 0
    styles = {"create": "green", "change": "yellow", "delete": "red"}
    for change in report.changes:
        ctx.out.line(ctx.out.style(change.describe(dry_run=report.dry_run), styles.get(change.op)))
    ctx.out.line(report.summary())
    return 0


async def run_export(ctx: Context, args: argparse.Namespace) -> int:
    tasks = await ctx.service.list_all(ctx.owner, kind="task")
    stamp = ctx.now().astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    count = f"{len(tasks)} task{'s' if len(tasks) != 1 else ''}"
    header = (
        f"wakecall tasks of owner {ctx.owner!r}, exported {stamp} ({count}).\n"
        "Apply with: wakecall apply FILE  (--prune also deletes tasks not listed here)"
    )
    text, warnings = export_tasks(tasks, header=header)
    for warning in warnings:
        print(f"wakecall: warning: {warning}", file=sys.stderr)
    if args.json:
        data = {"owner": ctx.owner, "exported_at": stamp, "tasks": [], **tomllib.loads(text)}
        text = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    if args.output is None or args.output == "-":
        sys.stdout.write(text)
        return 0
    path = anyio.Path(args.output)
    try:
        await path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror}") from exc
    ctx.out.line(f"exported {count} to {path}")
    return 0
