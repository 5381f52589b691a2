"""PostgreSQL for the multi-node tests: a schema of the shared test server per test, or a
private server of the test's own that it may stop and start again."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import asyncpg

from wakecall.ids import new_id
from wakecall.store.postgres import PostgresStore

POSTGRES_URL = os.environ.get("WAKECALL_TEST_POSTGRES_URL")

#: How many connections listen for a store's hints ($1: `PostgresStore.channel`).
LISTENERS_SQL = (
    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'wakecall-listen' "
    "AND query LIKE 'LISTEN %' || $1 || '%'"
)


def find_bindir() -> Path | None:
    """The directory of `initdb` and `pg_ctl` (Debian's layout first), or None."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(f"{candidate}/initdb", os.X_OK) and os.access(f"{candidate}/pg_ctl", os.X_OK):
            return Path(candidate)
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


@dataclass
class Database:
    """One schema of a PostgreSQL database: the URL and schema to give nodes, and a store and
    a plain connection for the test to set up and inspect with."""

    url: str
    schema: str
    store: PostgresStore
    conn: asyncpg.Connection

    async def rows(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return list(await self.conn.fetch(sql, *args))

    async def value(self, sql: str, *args: Any) -> Any:
        return await self.conn.fetchval(sql, *args)

    async def reconnect(self) -> None:
        """A new inspection connection (after the server restarted)."""
        self.conn = await asyncpg.connect(self.url, server_settings={"search_path": self.schema})


@asynccontextmanager
async def database(url: str) -> AsyncIterator[Database]:
    """A fresh schema in the database at `url`, dropped afterwards."""
    schema = f"n_{new_id('s')[-12:].lower()}"
    store = PostgresStore(url, schema=schema, max_pool=10)
    await store.open()
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        yield Database(url, schema, store, conn)
    finally:
        with anyio.CancelScope(shield=True):
            with contextlib.suppress(Exception):
                await conn.close()
            with contextlib.suppress(Exception):
                await store.drop_schema()
            await store.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateServer:
    """A PostgreSQL server of one test's own (so the test may stop it), in a temporary
    directory, on a free loopback port, trusting local connections. As root the server runs
    as the `postgres` user, which the Debian packages create."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="wakecall-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self._as, *args],
            check=True,
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=120,
        )

    def _init(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        )

    def _start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = self.root / "server.log"
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(log), "-o", options,
            "-w", "-t", "60", "start",
        )  # fmt: skip

    def _stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    async def start(self) -> None:
        await anyio.to_thread.run_sync(self._start)

    async def stop(self) -> None:
        await anyio.to_thread.run_sync(self._stop)

    async def __aenter__(self) -> PrivateServer:
        await anyio.to_thread.run_sync(self._init)
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        with anyio.CancelScope(shield=True):
            with contextlib.suppress(subprocess.SubprocessError):
                await self.stop()
            shutil.rmtree(self.root, ignore_errors=True)


async def poll_until(check: Callable[[], Awaitable[bool]], *, every: float = 0.2) -> None:
    """Look again every `every` seconds until `check()` holds: other processes write the
    database, so nothing in this one can wake the test. The caller bounds the wait."""
    while not await check():  # noqa: ASYNC110 - other processes do the work
        await anyio.sleep(every)
