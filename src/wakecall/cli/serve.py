"""`wakecall serve` (the MCP server) and `wakecall preview` (a schedule's next fires)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import anyio

from wakecall.cli.context import EXIT_ERROR
from wakecall.cli.output import local_text, utc_text
from wakecall.schedules import format_duration
from wakecall.settings import SETTINGS, Settings, load_settings

__all__ = ["add_parsers", "exit_now", "run_preview", "run_serve"]

log = logging.getLogger(__name__)

#: After the first SIGTERM or SIGINT, the process ends this long after the grace period for runs
#: in flight even if something still hangs (a store that does not answer a call under way).
STOP_MARGIN_SECONDS = 5.0


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
    args: argparse.Namespace,
    *,
    on_failure: Callable[[Exception], object] | None = None,
    on_stopped: Callable[[], object] | None = None,
) -> int:
    """Serve until the client closes stdio or a signal stops the server (see `_stop_on_signals`);
    0 then. `on_failure`, `on_stopped`: see `wakecall.server.serve`."""
    # lazy: start-up time (the serve command's own modules, loaded once it is chosen)
    from wakecall.logs import configure_logging
    from wakecall.server.startup import loading_for_good

    with loading_for_good():
        from wakecall.server import serve  # lazy: start-up time, as above

    flags = {s.name: getattr(args, s.name, None) for s in SETTINGS if s.flag}
    settings = load_settings(flags, config_file=args.config)
    configure_logging(settings.log_level, settings.log_format)
    prepare = functools.partial(apply_tasks_file, settings) if settings.tasks_file else None

    async def serve_until_stopped() -> None:
        stop = anyio.Event()
        failed: list[Exception] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(_stop_on_signals, stop, settings, name="wakecall-signals")
            try:
                await serve(
                    settings,
                    stop=stop,
                    on_failure=on_failure,
                    on_stopped=on_stopped,
                    prepare=prepare,
                )
            except Exception as exc:  # raised below, not in a group, for `main` to report
                failed.append(exc)
            tg.cancel_scope.cancel()
        if failed:
            raise failed[0]

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C before the signals are watched
        anyio.run(serve_until_stopped)
    return 0


async def apply_tasks_file(settings: Settings) -> None:
    """Apply `--tasks-file` to the owner's tasks before the scheduler starts (a bad file stops
    the start, nothing applied); what changed goes to stderr, and the signing secret of each
    new callback to the secrets file (mode 0600), which stderr names."""
    # lazy: start-up time (serving stdio, this runs after the handshake)
    from wakecall.store import clock_of, open_store
    from wakecall.taskfile import apply_file
    from wakecall.taskfile.secrets import secrets_path, write_secrets

    assert settings.tasks_file is not None
    store = open_store(settings.store_path, pg_schema=settings.pg_schema, pg_pool=settings.pg_pool)
    await store.open()
    try:
        service = settings.task_service(store, clock_of(store), settings.engine_config())
        report = await apply_file(service, settings.owner, settings.tasks_file)
    finally:
        await store.close()
    where = secrets_path(settings.tasks_file, settings.secrets_file)
    issued = {"callback_secrets": report.secrets(), "trigger_secrets": report.trigger_secrets()}
    if any(issued.values()):
        write_secrets(where, issued)
    for line in report.lines(secrets_in=str(where)):
        print(f"wakecall: {settings.tasks_file}: {line}", file=sys.stderr, flush=True)


async def _stop_on_signals(stop: anyio.Event, settings: Settings) -> None:
    """The first SIGTERM or SIGINT (Ctrl-C) stops the server gracefully: it sets `stop`, and the
    process ends at the latest `STOP_MARGIN_SECONDS` after the grace period for runs in flight
    (exit status 1 then). A second signal ends it at once, with the exit status 128 + the
    signal's number. Either way the runs left running are recorded interrupted when their
    leases expire, by the next node to look."""
    grace = settings.shutdown_grace.total_seconds()
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            if stop.is_set():
                log.warning("%s again: exiting now, without waiting for runs in flight", name)
                exit_now(128 + signum)
            log.info("%s: stopping; runs in flight have %gs to end", name, grace)
            stop.set()
            _exit_after(grace + STOP_MARGIN_SECONDS)


def _exit_after(seconds: float) -> None:
    """End the process in `seconds`, from a thread of its own: whatever the event loop is
    doing (a store call that does not return), the process ends."""

    def give_up() -> None:
        log.error(
            "could not stop within %gs of the signal; exiting now (runs still in flight are "
            "recorded interrupted when their leases expire)",
            seconds,
        )
        exit_now(EXIT_ERROR)

    timer = threading.Timer(seconds, give_up)
    timer.daemon = True
    timer.start()


def exit_now(code: int) -> NoReturn:
    """End the process now with `code`, output flushed (serving stdio, the SDK reads the
    client's input on a worker thread that nothing stops while that input stays open, so the
    process could not end otherwise)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


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
