"""`wakecall serve` (the MCP server) and `wakecall preview` (a schedule's next fires)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NoReturn

import anyio

from wakecall.cli.context import EXIT_ERROR
from wakecall.settings import SETTINGS, Settings, load_settings

__all__ = ["add_parsers", "exit_now", "run_preview", "run_serve"]

log = logging.getLogger(__name__)

#: After the first SIGTERM or SIGINT, the process ends this long after the grace period for runs
#: in flight even if something still hangs (a store that does not answer a call under way).
STOP_MARGIN_SECONDS = 5.0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
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
            shown = "" if setting.default in (None, ()) else f" (default: {setting.default})"
            p.add_argument(flag, default=None, help=setting.help + shown)
    p.set_defaults(handler=None)

    p = sub.add_parser("preview", help="show a schedule's next fires and a description")
    p.add_argument("schedule", help='e.g. "0 9 * * MON-FRI", "@every 30m", "in 5m"')
    p.add_argument("--tz", default="UTC", help="IANA time zone (default UTC)")
    p.add_argument("--count", type=int, default=5)
    p.set_defaults(handler=None)


def run_serve(
    args: argparse.Namespace,
    *,
    on_failure: Callable[[Exception], object] | None = None,
    on_stopped: Callable[[], object] | None = None,
) -> int:
    """Serve until the client closes stdio or a signal stops the server (see `_stop_on_signals`);
    0 then. `on_failure`, `on_stopped`: see `wakecall.server.serve`."""
    from wakecall.logs import configure_logging
    from wakecall.server.startup import loading_for_good

    with loading_for_good():
        from wakecall.server import serve

    flags = {s.name: getattr(args, s.name, None) for s in SETTINGS if s.flag}
    settings = load_settings(flags, config_file=args.config)
    configure_logging(settings.log_level, settings.log_format)

    async def serve_until_stopped() -> None:
        stop = anyio.Event()
        failed: list[Exception] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(_stop_on_signals, stop, settings, name="wakecall-signals")
            try:
                await serve(settings, stop=stop, on_failure=on_failure, on_stopped=on_stopped)
            except Exception as exc:  # raised below, not in a group, for `main` to report
                failed.append(exc)
            tg.cancel_scope.cancel()
        if failed:
            raise failed[0]

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C before the signals are watched
        anyio.run(serve_until_stopped)
    return 0


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
    from wakecall.schedules import parse_schedule, preview

    now = datetime.now(UTC)
    schedule = parse_schedule(args.schedule, timezone=args.tz, now=now)
    shown = preview(schedule, count=args.count, after=now)
    print(shown.description)
    for fire in shown.fires:
        print(f"  {fire.local.isoformat()}   ({fire.utc.isoformat().replace('+00:00', 'Z')})")
    return 0
