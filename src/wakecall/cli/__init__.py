"""The `wakecall` command: the MCP server, and the commands operators use on the store it uses
(tasks, runs, deliveries, task files), SQLite or PostgreSQL, while it runs or not."""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Any, NoReturn

import anyio
from pydantic import ValidationError

from wakecall import __version__
from wakecall.cli import serve
from wakecall.cli.context import (
    EXIT_ERROR,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
    open_context,
)
from wakecall.cli.parsing import CommandParser
from wakecall.cli.tables import MIN_ID_PREFIX
from wakecall.errors import (
    InvalidInput,
    NotFound,
    TaskNotFound,
    WakecallError,
    invalid_input_from,
)

__all__ = ["main"]

EPILOG = f"""\
Commands other than serve and preview work on the store a server uses (--store, else
WAKECALL_STORE, the config file, or the default SQLite file) as one owner (--owner, default
'local'); they start no scheduler: a running `wakecall serve` on the same store runs what
they queue. Add --json for machine-readable output. Tables and colour appear only on a
terminal, no wider than it (COLUMNS overrides its width), with the ids wakecall made
shortened to their first characters (NO_COLOR turns colour off). A command that takes an id
also takes the start of one, at least {MIN_ID_PREFIX} characters, that no other id of the owner
starts with.

exit status:
  {EXIT_OK}  success
  {EXIT_ERROR}  the command failed: the store could not be used, the task's state refused it
     (e.g. resuming an expired task), or a limit was reached
  {EXIT_USAGE}  invalid usage or input (a flag, a schedule, a task file): nothing was changed
  {EXIT_NOT_FOUND}  not found: no such task or delivery for this owner
"""


def build_parser(*, serve_only: bool = False) -> argparse.ArgumentParser:
    """The command line. `serve_only` leaves out the store commands, whose modules (most of
    wakecall) `wakecall serve` loads while it answers its client."""
    parser = CommandParser(
        prog="wakecall",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"wakecall {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.add_parsers(sub)
    if not serve_only:
        # lazy: start-up time (`wakecall serve` answers its client before loading these)
        from wakecall.cli import files, history, tasks

        tasks.add_parsers(sub)
        history.add_parsers(sub)
        files.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    # After the command name, its own parser reads every argument (and -h shows its help).
    args = build_parser(serve_only=argv[:1] == ["serve"]).parse_args(argv)
    if args.command == "serve":
        return _guard(
            lambda: serve.run_serve(
                args, on_failure=_exit_failed, on_stopped=lambda: serve.exit_now(EXIT_OK)
            )
        )
    if args.command == "preview":
        return _guard(lambda: serve.run_preview(args))
    return _guard(lambda: anyio.run(_run_store_command, args))


async def _run_store_command(args: argparse.Namespace) -> int:
    async with open_context(args, create=args.create) as ctx:
        try:
            result: int = await args.handler(ctx, args)
        except TaskNotFound as exc:
            raise NotFound(
                f"no task with id {exc.task_id!r} for owner {ctx.owner!r}; `wakecall tasks "
                "list` shows the owner's tasks (--owner picks another owner)"
            ) from None
        return result


def _guard(run: Any) -> int:
    """Run a command; report an expected failure on stderr with its exit status."""
    try:
        code: int = run()
        sys.stdout.flush()
        return code
    except ValidationError as exc:
        return _fail(str(invalid_input_from(exc)), EXIT_USAGE)
    except InvalidInput as exc:
        return _fail(str(exc), EXIT_USAGE)
    except NotFound as exc:
        return _fail(str(exc), EXIT_NOT_FOUND)
    except WakecallError as exc:
        return _fail(str(exc), EXIT_ERROR)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `wakecall tasks list | head`): not an error of ours
        sys.stderr.close()
        return EXIT_OK


def _exit_failed(exc: Exception) -> NoReturn:
    """Report why the server stopped and end the process now (see `serve.exit_now`)."""

    def fail() -> int:
        raise exc

    try:
        code = _guard(fail)
    except Exception:
        traceback.print_exc()
        code = EXIT_ERROR
    serve.exit_now(code)


def _fail(message: str, code: int) -> int:
    lines = message.splitlines() or [""]
    if len(lines) == 1:
        print(f"wakecall: {lines[0]}", file=sys.stderr)
    else:
        for line in lines[:-1]:
            print(line, file=sys.stderr)
        print(f"wakecall: {lines[-1]}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
