"""`wakecall tasks ...`: list, show, add, patch, pause, resume, delete and run tasks."""

from __future__ import annotations

import argparse
import json
import shlex
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, get_args

from pydantic import TypeAdapter

from wakecall.cli.context import EXIT_ERROR, Context, add_store_options
from wakecall.cli.output import (
    Cell,
    Output,
    relative,
    short_schedule,
    utc_text,
)
from wakecall.errors import InvalidInput
from wakecall.models import (
    Action,
    CatchUp,
    ClearableField,
    Overlap,
    RetryPolicy,
    Run,
    Task,
    TaskPatch,
    TaskSpec,
    TaskStatus,
)
from wakecall.schedules import format_duration, parse_duration
from wakecall.server.views import next_fires, run_view, task_view
from wakecall.taskfile.format import MAX_RETRIES

__all__ = ["action_text", "add_parsers", "last_run_text"]

CLEARABLE = get_args(ClearableField)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


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
    _task_options(p, patch=False)
    _common(p, run_add, create=True)

    p = commands.add_parser(
        "patch",
        help="change a task's fields",
        description="Change any mutable field of a task; the next fire is recomputed at once.",
    )
    p.add_argument("task_id", metavar="ID")
    p.add_argument("--name")
    p.add_argument("--schedule", help="a new schedule (see `tasks add`)")
    _task_options(p, patch=True)
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


def _common(p: argparse.ArgumentParser, handler: Any, *, create: bool = False) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")
    add_store_options(p)
    p.set_defaults(handler=handler, create=create)


def _task_options(p: argparse.ArgumentParser, *, patch: bool) -> None:
    g = p.add_argument_group("schedule")
    g.add_argument("--tz", "--timezone", dest="timezone", metavar="ZONE", help="IANA time zone")
    g.add_argument("--jitter", metavar="DURATION", help="spread fires by up to this much")

    a = p.add_argument_group(
        "action" + ("" if patch else " (default: wake the agent with the task's name)")
    )
    kind = a.add_mutually_exclusive_group()
    kind.add_argument("--noop", action="store_true", help="do nothing and succeed")
    kind.add_argument("--wakeup", metavar="REASON", help="wake the agent with this reason")
    kind.add_argument("--webhook", metavar="URL", help="call this URL")
    kind.add_argument(
        "--command",
        metavar="COMMAND_LINE",
        help="run a program: the line is split as a shell would split it, but no shell runs",
    )
    kind.add_argument("--action", metavar="JSON", help="the whole action as a JSON object")
    a.add_argument("--method", type=str.upper, choices=METHODS, help="webhook method (POST)")
    a.add_argument(
        "--header", action="append", default=[], metavar="'NAME: VALUE'", help="webhook header"
    )
    a.add_argument("--body", metavar="JSON", help="webhook JSON body")
    a.add_argument("--request-timeout", metavar="DURATION", help="webhook HTTP timeout")
    a.add_argument("--cwd", metavar="DIR", help="command working directory (absolute)")
    a.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="command variable"
    )
    a.add_argument("--context", metavar="JSON", help="wakeup context handed back at wake time")

    e = p.add_argument_group("execution")
    e.add_argument("--timeout", metavar="DURATION", help="per attempt")
    e.add_argument(
        "--retries",
        type=int,
        metavar="N",
        help=f"retries after the first attempt (0-{MAX_RETRIES})",
    )
    e.add_argument("--retry-delay", metavar="DURATION", help="wait before the first retry (1s)")
    e.add_argument("--retry-backoff", choices=["none", "linear", "exponential"])
    e.add_argument("--retry-max-delay", metavar="DURATION", help="cap on any wait (1h)")
    e.add_argument(
        "--retry-jitter",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add up to 10%% random extra to each wait (on)",
    )
    e.add_argument("--overlap", choices=[o.value for o in Overlap], help="(skip)")
    e.add_argument("--max-queued", type=int, metavar="N", help="with --overlap queue (1)")
    e.add_argument("--catchup", choices=[c.value for c in CatchUp], help="(latest)")
    e.add_argument("--catchup-window", metavar="DURATION", help="(1h)")

    c = p.add_argument_group("chains, inbound events and conditions")
    c.add_argument(
        "--depends-on",
        metavar="TASK_ID",
        help="run after each success of this task (no schedule needed: use 'on demand')",
    )
    c.add_argument(
        "--trigger-per-minute",
        type=int,
        metavar="N",
        help="accept inbound events at POST /triggers/ID, at most N a minute (a new secret, "
        "shown once)",
    )
    c.add_argument(
        "--condition-url",
        metavar="URL",
        help='check this URL before each attempt; {"proceed": false} skips the run',
    )
    c.add_argument("--condition-method", choices=["GET", "POST"], help="(POST)")
    c.add_argument("--condition-timeout", metavar="DURATION", help="(10s)")

    m = p.add_argument_group("limits, callback and metadata")
    m.add_argument("--max-runs", type=int, metavar="N", help="end after N scheduled runs")
    m.add_argument("--expires-at", metavar="INSTANT", help="end at this ISO-8601 instant")
    m.add_argument("--callback-url", metavar="URL", help="POST each result here (signed)")
    m.add_argument(
        "--metadata",
        metavar="JSON",
        help="a JSON object" + (" (replaces the task's metadata)" if patch else ""),
    )
    m.add_argument(
        "--meta",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one metadata entry, a string (repeatable)"
        + ("; merged into the task's metadata" if patch else ""),
    )


# --- reading flags ----------------------------------------------------------------------
def _json(text: str, flag: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{flag} is not valid JSON: {exc}", field=flag) from None


def _pairs(items: list[str], sep: str, flag: str, example: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in items:
        key, given, value = item.partition(sep)
        if not given or not key.strip():
            raise InvalidInput(f"{flag} {item!r} is not {example}", field=flag)
        found[key.strip()] = value.strip() if sep == ":" else value
    return found


def _schedule_arg(text: str) -> str | dict[str, Any]:
    if text.lstrip().startswith("{"):
        value = _json(text, "schedule")
        if not isinstance(value, dict):
            raise InvalidInput("schedule: a JSON schedule must be an object", field="schedule")
        return value
    return text


_MODIFIERS = {
    "method": "webhook",
    "header": "webhook",
    "body": "webhook",
    "request_timeout": "webhook",
    "cwd": "command",
    "env": "command",
    "context": "wakeup",
}
_FLAG = {
    "method": "--method",
    "header": "--header",
    "body": "--body",
    "request_timeout": "--request-timeout",
    "cwd": "--cwd",
    "env": "--env",
    "context": "--context",
}


def _action(args: argparse.Namespace, base: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The action the flags describe: a new one (`--webhook URL` ...), or `base` with the
    given details changed; None when no action flag is given."""
    given = [name for name in _MODIFIERS if getattr(args, name) not in (None, [])]
    action: dict[str, Any]
    if args.action is not None:
        action = _json(args.action, "--action")
        if not isinstance(action, dict):
            raise InvalidInput("--action must be a JSON object", example='{"type": "noop"}')
    elif args.noop:
        action = {"type": "noop"}
    elif args.wakeup is not None:
        action = {"type": "wakeup", "reason": args.wakeup}
    elif args.webhook is not None:
        action = {"type": "webhook", "url": args.webhook}
    elif args.command is not None:
        try:
            argv = shlex.split(args.command)
        except ValueError as exc:
            raise InvalidInput(f"--command cannot be split: {exc}", field="--command") from None
        action = {"type": "command", "argv": argv}
    elif given and base is not None:
        action = dict(base)
    elif given:
        kind = _MODIFIERS[given[0]]
        raise InvalidInput(
            f"{_FLAG[given[0]]} sets a detail of a {kind} action; give the action too "
            f"(--{kind} ...)"
        )
    else:
        return None
    for name in given:
        if action.get("type") != _MODIFIERS[name]:
            raise InvalidInput(
                f"{_FLAG[name]} applies to {_MODIFIERS[name]} actions, not to a "
                f"{action.get('type')} action"
            )
    if args.method is not None:
        action["method"] = args.method
    if args.header:
        headers = dict(action.get("headers") or {})
        headers.update(_pairs(args.header, ":", "--header", "'NAME: VALUE'"))
        action["headers"] = headers
    if args.body is not None:
        action["body"] = _json(args.body, "--body")
    if args.request_timeout is not None:
        seconds = parse_duration(args.request_timeout, field="--request-timeout")
        action["timeout"] = seconds.total_seconds()
    if args.cwd is not None:
        action["cwd"] = args.cwd
    if args.env:
        env = dict(action.get("env") or {})
        env.update(_pairs(args.env, "=", "--env", "NAME=VALUE"))
        action["env"] = env
    if args.context is not None:
        action["context"] = _json(args.context, "--context")
    return action


_RETRY_FLAGS = {
    "retry_delay": "delay",
    "retry_backoff": "backoff",
    "retry_max_delay": "max_delay",
    "retry_jitter": "jitter",
}


def _retry(args: argparse.Namespace, base: RetryPolicy | None) -> RetryPolicy | None:
    given: dict[str, Any] = {}
    if args.retries is not None:
        if not 0 <= args.retries <= MAX_RETRIES:
            raise InvalidInput(
                f"--retries must be from 0 to {MAX_RETRIES} (retries after the first attempt), "
                f"got {args.retries}",
                field="--retries",
            )
        given["attempts"] = args.retries + 1
    for flag, key in _RETRY_FLAGS.items():
        if getattr(args, flag) is not None:
            given[key] = getattr(args, flag)
    if not given:
        return None
    start = base.model_dump() if base is not None else {}
    return RetryPolicy.model_validate({**start, **given})


def _metadata(args: argparse.Namespace, base: Mapping[str, Any]) -> dict[str, Any] | None:
    if args.metadata is None and not args.meta:
        return None
    metadata: dict[str, Any] = dict(base)
    if args.metadata is not None:
        metadata = _json(args.metadata, "--metadata")
        if not isinstance(metadata, dict):
            raise InvalidInput("--metadata must be a JSON object", example='{"team": "ops"}')
    metadata.update(_pairs(args.meta, "=", "--meta", "KEY=VALUE"))
    return metadata


_PLAIN = (
    "timezone",
    "jitter",
    "timeout",
    "overlap",
    "max_queued",
    "catchup",
    "catchup_window",
    "depends_on",
)


def _extras(args: argparse.Namespace) -> dict[str, Any]:
    """The trigger and condition options, as task fields."""
    fields: dict[str, Any] = {}
    if args.trigger_per_minute is not None:
        fields["trigger"] = {"per_minute": args.trigger_per_minute}
    if args.condition_url is not None:
        condition: dict[str, Any] = {"url": args.condition_url}
        if args.condition_method is not None:
            condition["method"] = args.condition_method
        if args.condition_timeout is not None:
            condition["timeout"] = args.condition_timeout
        fields["condition"] = condition
    elif args.condition_method is not None or args.condition_timeout is not None:
        raise InvalidInput("--condition-method and --condition-timeout need --condition-url")
    return fields


_LIMITS = ("max_runs", "expires_at", "callback_url")


# --- commands ---------------------------------------------------------------------------
async def run_list(ctx: Context, args: argparse.Namespace) -> int:

    tasks = await ctx.service.list_all(
        ctx.owner,
        kind=args.kind,
        status=None if args.status is None else TaskStatus(args.status),
        name_contains=args.name,
    )
    last = {t.id: await _last_run(ctx, t) for t in tasks}
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
    headers = ["ID", "NAME", "SCHEDULE", "ZONE", "STATUS", "LAST RUN", "NEXT RUN"]
    if not rows and ctx.out.tty:
        ctx.out.line(f"no tasks for owner {ctx.owner!r}")
        return 0
    ctx.out.table(headers, rows)
    return 0


async def _last_run(ctx: Context, task: Task) -> Run | None:
    runs = await ctx.store.list_runs(ctx.owner, task_id=task.id, limit=1)
    return runs[0] if runs else None


def last_run_text(run: Run | None, now: datetime, out: Output | None = None) -> Cell:
    if run is None:
        return "-"
    status = str(run.status)
    if status == "queued":
        text = "queued"
    elif status == "running":
        text = f"running since {relative(run.started_at, now).removesuffix(' ago')}"
    else:
        when = run.finished_at or run.started_at or run.created_at
        text = f"{relative(when, now)} {status}"
        if run.attempt > 1:
            text += f" (attempt {run.attempt})"
    return Output.status(status, text) if out is not None else text


async def run_show(ctx: Context, args: argparse.Namespace) -> int:
    task = await ctx.service.get(ctx.owner, args.task_id)
    await show_task(ctx, task)
    return 0


async def show_task(ctx: Context, task: Task, **extra: Any) -> None:

    view = task_view(task, **extra)
    last = await _last_run(ctx, task)
    if ctx.out.json_mode:
        data = view.model_dump(mode="json", exclude_none=False)
        data["last_run"] = None if last is None else run_view(last).model_dump(mode="json")
        ctx.out.json(data)
        return
    now = ctx.now()
    status = str(task.status)
    note = task.pause_note or task.end_reason
    pairs: list[tuple[str, Cell | list[Cell]]] = [
        ("id", task.id),
        ("name", task.name),
        ("status", Output.status(status, status + (f" ({note})" if note else ""))),
    ]
    if task.kind == "wakeup":
        pairs.append(("kind", "wakeup"))
    pairs += [
        ("schedule", f"{short_schedule(task.schedule)}: {view.schedule_description}"),
        ("time zone", task.timezone),
        (
            "next fires",
            [
                f"{f.local.isoformat(sep=' ')}  ({utc_text(f.utc)}, {relative(f.utc, now)})"
                for f in view.next_fires
            ],
        ),
        ("action", action_text(task.action)),
        ("retry", retry_text(task.retry)),
        ("timeout", f"{view.timeout} per attempt" if view.timeout else "none"),
        ("overlap", overlap_text(task)),
        ("catch-up", f"{view.catchup} (window {view.catchup_window})"),
        ("runs", runs_text(task)),
        ("expires at", utc_text(task.expires_at) if task.expires_at else "never"),
        ("callback", task.callback_url or "none"),
        ("metadata", json.dumps(task.metadata, ensure_ascii=False) if task.metadata else "none"),
        ("last run", last_run_text(last, now, ctx.out)),
        ("created", utc_text(task.created_at)),
        ("updated", utc_text(task.updated_at)),
    ]
    if task.depends_on:
        pairs.append(("depends on", f"{task.depends_on} (runs after each of its successes)"))
    if view.trigger is not None:
        pairs.append(
            ("inbound events", f"POST {view.trigger.path}, at most {view.trigger.per_minute}/min")
        )
    if task.condition:
        pairs.append(
            ("condition", f"{task.condition.get('method', 'POST')} {task.condition['url']}")
        )
    if view.callback_secret:
        pairs.append(("callback secret", (f"{view.callback_secret} (shown once)", "bold")))
    if view.trigger_secret:
        pairs.append(("trigger secret", (f"{view.trigger_secret} (shown once)", "bold")))
    ctx.out.fields(pairs)


def action_text(action: Mapping[str, Any]) -> str:
    kind = action.get("type")
    if kind == "webhook":
        text = f"webhook {action.get('method', 'POST')} {action.get('url')}"
        headers = action.get("headers") or {}
        if headers:
            text += f", headers {', '.join(sorted(headers))}"
        if action.get("body") is not None:
            text += ", a JSON body"
        if action.get("timeout") is not None:
            text += f", request timeout {action['timeout']:g}s"
        return text
    if kind == "command":
        text = "command " + shlex.join(action.get("argv") or [])
        if action.get("cwd"):
            text += f" (in {action['cwd']})"
        if action.get("env"):
            text += f", env {', '.join(sorted(action['env']))}"
        return text
    if kind == "wakeup":
        text = f"wakeup: {action.get('reason') or '(no reason)'}"
        return text + (", with a context" if action.get("context") is not None else "")
    return str(kind)


def retry_text(retry: RetryPolicy) -> str:
    if retry.attempts == 1:
        return "no retries (1 attempt)"
    text = (
        f"{retry.attempts - 1} retries ({retry.attempts} attempts), {retry.backoff} backoff "
        f"from {format_duration(retry.delay)} up to {format_duration(retry.max_delay)}"
    )
    return text + (" with jitter" if retry.jitter else "")


def overlap_text(task: Task) -> str:
    queued = f" (up to {task.max_queued} queued)" if task.overlap == Overlap.QUEUE else ""
    return f"{task.overlap}{queued}"


def runs_text(task: Task) -> str:
    text = f"{task.run_count} counted"
    if task.max_runs is not None:
        text += f" of at most {task.max_runs} ({task.remaining_runs} left)"
    return text


async def run_add(ctx: Context, args: argparse.Namespace) -> int:
    fields: dict[str, Any] = {"name": args.name, "schedule": _schedule_arg(args.schedule)}
    for key in (*_PLAIN, *_LIMITS, "idempotency_key"):
        if getattr(args, key) is not None:
            fields[key] = getattr(args, key)
    retry = _retry(args, None)
    if retry is not None:
        fields["retry"] = retry
    metadata = _metadata(args, {})
    if metadata is not None:
        fields["metadata"] = metadata
    fields["action"] = _action(args, None) or {"type": "wakeup", "reason": args.name}
    fields["active"] = not args.paused
    fields.update(_extras(args))
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
    before = await ctx.service.get(ctx.owner, args.task_id)
    given: dict[str, Any] = {}
    if args.name is not None:
        given["name"] = args.name
    if args.schedule is not None:
        given["schedule"] = _schedule_arg(args.schedule)
    for key in (*_PLAIN, *_LIMITS):
        if getattr(args, key) is not None:
            given[key] = getattr(args, key)
    retry = _retry(args, before.retry)
    if retry is not None:
        given["retry"] = retry
    metadata = _metadata(args, before.metadata)
    if metadata is not None:
        given["metadata"] = metadata
    action = _action(args, before.action)
    if action is not None:
        given["action"] = action
    given.update(_extras(args))
    for name in args.clear:
        if name in given:
            raise InvalidInput(f"{name} is both given and cleared (--clear {name}); choose one")
        given[name] = {} if name == "metadata" else None
    signs = given.get("callback_url") or (before.callback_url and "callback_url" not in given)
    if args.rotate_callback_secret and not signs:
        raise InvalidInput("--rotate-callback-secret: the task has no callback_url to sign for")
    if not given and not args.rotate_callback_secret:
        raise InvalidInput(
            "nothing to change: give at least one option",
            example="wakecall tasks patch ID --schedule '*/10 * * * *'",
        )
    patch = TaskPatch.model_validate(given)
    changed = await ctx.service.patch(
        ctx.owner, args.task_id, patch, rotate_callback_secret=args.rotate_callback_secret
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
    task = await ctx.service.pause(ctx.owner, args.task_id, args.note)
    return await _done(ctx, task, "paused")


async def run_resume(ctx: Context, args: argparse.Namespace) -> int:
    task = await ctx.service.resume(ctx.owner, args.task_id)
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
    task = await ctx.service.get(ctx.owner, args.task_id)
    await ctx.service.delete(ctx.owner, task.id)
    if ctx.out.json_mode:
        ctx.out.json({"deleted": True, "id": task.id})
    else:
        ctx.out.line(f"deleted {task.id} ({task.name})")
    return 0


async def run_run(ctx: Context, args: argparse.Namespace) -> int:

    if args.dry_run:
        return await _dry_run(ctx, args.task_id)
    run = await ctx.service.run_now(ctx.owner, args.task_id)
    if ctx.out.json_mode:
        ctx.out.json(run_view(run).model_dump(mode="json"))
    else:
        ctx.out.line(
            f"queued {run.id}: a manual run of {run.task_id}; a running `wakecall serve` on "
            "this store executes it (`wakecall runs ID` shows how it went)"
        )
    return 0


async def _dry_run(ctx: Context, task_id: str) -> int:

    task = await ctx.service.get(ctx.owner, task_id)
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
        ("max runs", runs_text(task) + "; a manual run does not count"),
        (
            "next fires",
            [f"{f.local.isoformat(sep=' ')}  ({relative(f.utc, now)})" for f in fires],
        ),
    ]
    out.fields(pairs)
    out.line("dry run: nothing was queued")
    return EXIT_ERROR if refused else 0
