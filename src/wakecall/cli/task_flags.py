"""The flags of `tasks add` and `tasks patch`, and the task fields they give."""

from __future__ import annotations

import argparse
import json
import shlex
from collections.abc import Mapping
from typing import Any, get_args

from wakecall.errors import InvalidInput
from wakecall.models import (
    MAX_PAUSE_AFTER_FAILURES,
    CatchUp,
    ClearableField,
    Overlap,
    RetryPolicy,
    Task,
)
from wakecall.schedules import parse_duration
from wakecall.taskfile.format import MAX_RETRIES

__all__ = ["CLEARABLE", "add_fields", "add_task_options", "patch_fields"]

CLEARABLE = get_args(ClearableField)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def add_task_options(p: argparse.ArgumentParser, *, patch: bool) -> None:
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
    e.add_argument(
        "--pause-after-failures",
        type=int,
        metavar="N",
        help=f"pause the task after N failed runs in a row (up to {MAX_PAUSE_AFTER_FAILURES}; "
        "0: never)",
    )

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
    c.add_argument(
        "--concurrency",
        metavar="KEY=LIMIT",
        help="at most LIMIT runs at once across your tasks with KEY (e.g. crm=3)",
    )
    c.add_argument(
        "--rate-limit",
        metavar="KEY=LIMIT/PERIOD",
        help="at most LIMIT run starts per rolling PERIOD across your tasks with KEY "
        "(e.g. crm=10/1m)",
    )

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
    "pause_after_failures",
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
    if args.concurrency is not None:
        key, limit = _keyed(args.concurrency, "--concurrency", "crm=3")
        fields["concurrency"] = {"key": key, "limit": _count(limit, "--concurrency", "crm=3")}
    if args.rate_limit is not None:
        key, rest = _keyed(args.rate_limit, "--rate-limit", "crm=10/1m")
        limit, slash, period = rest.partition("/")
        if not slash or not period:
            raise InvalidInput(
                f"--rate-limit {args.rate_limit!r} needs a period after a '/'",
                example="--rate-limit crm=10/1m",
            )
        fields["rate_limit"] = {
            "key": key,
            "limit": _count(limit, "--rate-limit", "crm=10/1m"),
            "period": period,
        }
    return fields


def _keyed(text: str, flag: str, example: str) -> tuple[str, str]:
    key, eq, rest = text.partition("=")
    if not eq or not key or not rest:
        raise InvalidInput(f"{flag} {text!r} is not KEY=VALUE", example=f"{flag} {example}")
    return key, rest


def _count(text: str, flag: str, example: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(
            f"{flag}: the limit {text!r} is not a whole number", example=f"{flag} {example}"
        ) from None


_LIMITS = ("max_runs", "expires_at", "callback_url")


def add_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The fields of a new task (`TaskSpec`) as the flags of `tasks add` give them."""
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
    return fields


def patch_fields(args: argparse.Namespace, before: Task) -> dict[str, Any]:
    """The fields `tasks patch` changes (`TaskPatch`), from its flags and the task as it is
    (none for a rotation of the callback secret alone)."""
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
    return given
