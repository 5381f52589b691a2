"""The `wakecall` console script as operators run it: a real process, its own SQLite file (or a
fresh PostgreSQL schema), no WAKECALL_* variables from outside, a private HOME.

Tests cannot import each other (``--import-mode=importlib``), so the helpers live behind the
``cli`` fixture: ``cli.run(...)`` (blocking), ``await cli.arun(...)``, ``cli.json(...)``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from wakecall.ids import new_id

#: A CLI process imports the MCP SDK's models (about a second on this machine); leave room for
#: a loaded machine without letting a hung command stall the suite.
COMMAND_TIMEOUT = 60
POSTGRES_URL = os.environ.get("WAKECALL_TEST_POSTGRES_URL")
WAKECALL = shutil.which("wakecall", path=str(Path(sys.executable).parent))


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    args: tuple[str, ...]

    def json(self) -> Any:
        assert self.code == 0, f"wakecall {' '.join(self.args)} exited {self.code}: {self.stderr}"
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return f"wakecall {' '.join(self.args)} → {self.code}\n{self.stdout}{self.stderr}"


class Cli:
    """Runs `wakecall ...` against one store (`--store` is added unless `store=None`)."""

    def __init__(self, tmp_path: Path, store: str, extra: tuple[str, ...] = ()) -> None:
        assert WAKECALL is not None, f"no wakecall console script next to {sys.executable}"
        self.executable = WAKECALL
        self.tmp_path = tmp_path
        self.store = store
        self.extra = extra  # store options every command gets (e.g. --pg-schema)
        self.home = tmp_path / "home"
        self.home.mkdir(exist_ok=True)

    def env(self, **extra: str) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("WAKECALL_")}
        inherited.pop("NO_COLOR", None)
        return {
            **inherited,
            "HOME": str(self.home),
            "XDG_DATA_HOME": str(self.home / ".local" / "share"),
            **extra,
        }

    def argv(self, args: tuple[str, ...], store: str | None) -> list[str]:
        command = list(args)
        if store is not None and args and args[0] not in ("preview", "--help", "--version"):
            command += ["--store", store, *self.extra]
        return [self.executable, *command]

    def run(
        self,
        *args: str,
        store: str | None = "default",
        env: dict[str, str] | None = None,
        input: str | None = None,
    ) -> Result:
        target = self.store if store == "default" else store
        done = subprocess.run(
            self.argv(args, target),
            capture_output=True,
            text=True,
            env=self.env(**(env or {})),
            cwd=self.tmp_path,
            timeout=COMMAND_TIMEOUT,
            input=input,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr, args)

    async def arun(self, *args: str, env: dict[str, str] | None = None) -> Result:
        """`run` without blocking the event loop (for tests that also drive a server)."""
        with anyio.fail_after(COMMAND_TIMEOUT):
            done = await anyio.run_process(
                self.argv(args, self.store),
                env=self.env(**(env or {})),
                cwd=self.tmp_path,
                check=False,
            )
        return Result(done.returncode, done.stdout.decode(), done.stderr.decode(), args)

    def ok(self, *args: str, **kwargs: Any) -> Result:
        """Run a command that must succeed."""
        result = self.run(*args, **kwargs)
        assert result.code == 0, str(result)
        return result

    def json(self, *args: str, **kwargs: Any) -> Any:
        """Run a command that must succeed with `--json`; its parsed output."""
        return self.ok(*args, "--json", **kwargs).json()

    def fails(self, code: int, *args: str, **kwargs: Any) -> str:
        """Run a command that must fail with `code`; its stderr (stdout must be empty)."""
        result = self.run(*args, **kwargs)
        assert result.code == code, str(result)
        assert result.stdout == "", str(result)
        assert result.stderr.strip(), str(result)
        return result.stderr

    def task_ids(self, **kwargs: Any) -> list[str]:
        return [t["id"] for t in self.json("tasks", "list", **kwargs)["tasks"]]

    def write(self, name: str, text: str) -> Path:
        path = self.tmp_path / name
        path.write_text(text)
        return path


STORE_KINDS = ["sqlite"] + (["postgres"] if POSTGRES_URL else [])


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """The console script on a SQLite file of this test."""
    return Cli(tmp_path, str(tmp_path / "wakecall.db"))


@pytest.fixture(params=STORE_KINDS)
def any_cli(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cli]:
    """The console script on each kind of store: a SQLite file, and (when
    WAKECALL_TEST_POSTGRES_URL is set) a fresh PostgreSQL schema, dropped afterwards."""
    if request.param == "sqlite":
        yield Cli(tmp_path, str(tmp_path / "wakecall.db"))
        return
    schema = f"c_{new_id('s')[-12:].lower()}"  # pragma: no cover - with PostgreSQL
    try:
        yield Cli(tmp_path, POSTGRES_URL or "", ("--pg-schema", schema))
    finally:
        anyio.run(_drop_schema, schema)


async def _drop_schema(schema: str) -> None:
    from wakecall.store.postgres import PostgresStore

    store = PostgresStore(POSTGRES_URL or "", schema=schema)
    await store.open()
    try:
        await store.drop_schema()
    finally:
        await store.close()
