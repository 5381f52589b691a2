"""`wakecall serve` (the MCP server) and `wakecall preview` (a schedule's next fires)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio

from wakecall.cli.output import local_text, utc_text
from wakecall.schedules import format_duration
from wakecall.settings import SETTINGS, Settings, load_settings

__all__ = ["add_parsers", "run_preview", "run_serve"]


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        usage="%(prog)s [--http] [options]",
        help="run the MCP server (stdio by default, --http for Streamable HTTP)",
        description=(
            "Run the MCP server and its scheduler. Each setting below can also come from the "
            "environment (WAKECALL_<NAME>, e.g. WAKECALL_STORE) or from a TOML config file "
            "(--config or WAKECALL_CONFIG), in that order of precedence after the flags. "
            "Bearer tokens for HTTP come from --tokens-file or WAKECALL_TOKENS='TOKEN=OWNER,...'."
        ),
    )
    p.add_argument("--config", help="TOML config file")
    for setting in SETTINGS:
        if not setting.flag:
            continue
        flag = "--" + setting.name.replace("_", "-")
        if setting.default is False:
            p.add_argument(flag, action="store_const", const=True, default=None, help=setting.help)
        else:
            default = setting.default
            shown = "" if default in (None, ()) else f" (default: {shown_default(default)})"
            p.add_argument(flag, default=None, help=setting.help + shown)
    p.set_defaults(handler=None)

    p = sub.add_parser("preview", help="show a schedule's next fires and a description")
    p.add_argument("schedule", help='e.g. "0 9 * * MON-FRI", "@every 30m", "in 5m"')
    p.add_argument("--tz", default="UTC", help="IANA time zone (default UTC)")
    p.add_argument("--count", type=int, default=5, help="how many fires (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=None)


def shown_default(value: Any) -> str:
    """A setting's default as it is written: durations as `30s`, `10m`, `1d`."""
    return format_duration(value) if isinstance(value, timedelta) else str(value)


def run_serve(
    args: argparse.Namespace, *, on_failure: Callable[[Exception], object] | None = None
) -> int:
    """Serve until the client or a signal stops it. `on_failure`: see `wakecall.server.serve`."""
    # lazy: start-up time (the serve command's own modules, loaded once it is chosen)
    from wakecall.logs import configure_logging
    from wakecall.server.startup import loading_for_good

    with loading_for_good():
        from wakecall.server import serve  # lazy: start-up time, as above

    flags = {s.name: getattr(args, s.name, None) for s in SETTINGS if s.flag}
    settings = load_settings(flags, config_file=args.config)
    configure_logging(settings.log_level, settings.log_format)
    prepare = functools.partial(apply_tasks_file, settings) if settings.tasks_file else None
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(functools.partial(serve, settings, on_failure=on_failure, prepare=prepare))
    return 0


async def apply_tasks_file(settings: Settings) -> None:
    """Apply `--tasks-file` to the owner's tasks before the scheduler starts (a bad file stops
    the start, nothing applied); what changed goes to stderr, with the signing secret of each
    new callback (shown once)."""
    # lazy: start-up time (serving stdio, this runs after the handshake)
    from wakecall.store import clock_of, open_store
    from wakecall.taskfile import apply_file

    assert settings.tasks_file is not None
    store = open_store(settings.store_path, pg_schema=settings.pg_schema, pg_pool=settings.pg_pool)
    await store.open()
    try:
        service = settings.task_service(store, clock_of(store), settings.engine_config())
        report = await apply_file(service, settings.owner, settings.tasks_file)
    finally:
        await store.close()
    for line in report.lines():
        print(f"wakecall: {settings.tasks_file}: {line}", file=sys.stderr, flush=True)


def run_preview(args: argparse.Namespace) -> int:
    # lazy: start-up time (the preview command's own modules, loaded once it is chosen)
    from wakecall.schedules import parse_schedule, preview

    now = datetime.now(UTC)
    schedule = parse_schedule(args.schedule, timezone=args.tz, now=now)
    shown = preview(schedule, count=args.count, after=now)
    if args.json:
        fires = [{"local": f.local.isoformat(), "utc": utc_iso(f.utc)} for f in shown.fires]
        data = {"description": shown.description, "timezone": shown.timezone, "fires": fires}
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    print(shown.description)
    for fire in shown.fires:
        print(f"  {local_text(fire.local)}   ({utc_text(fire.utc)})")
    return 0


def utc_iso(moment: datetime) -> str:
    """An instant in UTC as JSON carries it: `2026-12-07T14:00:00Z`."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
