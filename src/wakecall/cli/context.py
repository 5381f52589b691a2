"""What every store command works with: the settings `wakecall serve` would use, the store
they name, the task service on it (with the server's clock, limits and operator policy), the
owner to act as, and where to print.

No scheduler is started: the commands change the store, and a running server picks the changes
up (as another scheduler node would).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from wakecall.cli.output import Output
from wakecall.errors import StoreError
from wakecall.settings import Settings, load_settings

if TYPE_CHECKING:  # loaded by `open_context`: `wakecall serve` needs the exit codes only
    from wakecall.engine import TaskService
    from wakecall.store import Store

__all__ = [
    "EXIT_ERROR",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_USAGE",
    "Context",
    "add_store_options",
    "open_context",
    "sqlite_path",
]

EXIT_OK = 0
EXIT_ERROR = 1  # the command failed: store, state of the task, a limit
EXIT_USAGE = 2  # invalid usage or input: nothing was changed
EXIT_NOT_FOUND = 3  # no such task, run or delivery for this owner


def add_store_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("store and owner (resolved as `wakecall serve` does)")
    group.add_argument(
        "--store",
        metavar="PATH_OR_URL",
        help="SQLite file or postgresql:// URL (default: WAKECALL_STORE, the config file, or "
        "wakecall.db in the user data directory)",
    )
    group.add_argument("--owner", help="act as this owner (default: the settings' owner, 'local')")
    group.add_argument(
        "--pg-schema", metavar="NAME", help="PostgreSQL schema of the tables (default: wakecall)"
    )
    group.add_argument("--config", metavar="FILE", help="TOML config file (or WAKECALL_CONFIG)")


@dataclass
class Context:
    settings: Settings
    owner: str
    store: Store
    service: TaskService
    out: Output

    def now(self) -> datetime:
        return self.service.now()


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite store URL; None for PostgreSQL."""
    if url.startswith(("postgres://", "postgresql://")):
        return None
    return Path(url[len("sqlite:///") :] if url.startswith("sqlite:///") else url)


@asynccontextmanager
async def open_context(args: argparse.Namespace, *, create: bool) -> AsyncIterator[Context]:
    """Open the store the settings name. Unless `create`, a SQLite file that does not exist
    yet is refused rather than created (a mistyped path would otherwise show no tasks)."""
    # lazy: start-up time (`wakecall serve` imports this module for its exit codes)
    from wakecall.store import clock_of, open_store

    flags = {"store": args.store, "owner": args.owner, "pg_schema": args.pg_schema}
    settings = load_settings(flags, config_file=args.config)
    url = settings.store_path
    path = sqlite_path(url)
    if not create and path is not None and str(path) != ":memory:" and not path.exists():
        raise StoreError(
            f"no wakecall database at {path}; `wakecall serve`, `wakecall tasks add` and "
            "`wakecall apply` create it (or give --store)"
        )
    store = open_store(url, pg_schema=settings.pg_schema, pg_pool=min(settings.pg_pool, 2))
    await store.open()
    try:
        service = settings.task_service(store, clock_of(store), settings.engine_config())
        yield Context(
            settings=settings,
            owner=settings.owner,
            store=store,
            service=service,
            out=Output(sys.stdout, json_mode=bool(getattr(args, "json", False))),
        )
    finally:
        with anyio.CancelScope(shield=True):
            await store.close()
