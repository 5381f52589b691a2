"""Stopping a node was neither graceful nor bounded.

SIGTERM (what systemd, Docker and Kubernetes send) ended `wakecall serve --http` before the
engine's shutdown ran: uvicorn raised the signal again once it had stopped serving, the process
died of it (exit status -15) and its runs in flight stayed `running` until their lease expired.
A client long-polling `get_events` kept the node up past 30 s while its scheduler went on
creating runs. With PostgreSQL down, SIGINT never ended the process: the run writer retried for
ever in a shielded scope. Over stdio, Ctrl-C did nothing at all.

Now SIGTERM or SIGINT stops a node within 10 s in every case: it claims nothing more at once,
answers open long polls, gives runs in flight `--shutdown-grace` to end and records the rest
interrupted (retried per their policy), gives up on writes the store keeps refusing (the leases
expire and the next node reaps those runs), and exits with status 0, printing nothing on stdout.

Each test runs `python -m wakecall serve` as a real process and inspects the store it uses.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from anyio.abc import ByteReceiveStream, Process
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from support.postgres import POSTGRES_URL, PrivateServer, database, find_bindir, poll_until
from support.protocol import INITIALIZE
from wakecall.actions.command import CommandPolicy
from wakecall.actions.policy import ActionPolicy
from wakecall.engine import EngineConfig, TaskService
from wakecall.models import (
    AttemptStatus,
    CommandAction,
    NoopAction,
    RetryPolicy,
    Run,
    RunStatus,
    Task,
    TaskSpec,
)
from wakecall.store import SQLiteStore, Store, clock_of

pytestmark = pytest.mark.slow

#: What a stop may take, from the signal to the end of the process.
STOP_BOUND = 10
#: Starting a process that imports the MCP SDK takes a second or two; room for a loaded machine.
START_TIMEOUT = 30
SERVING = re.compile(rb"serving MCP on (http://\S+/mcp)")
OWNER = "local"  # the owner of requests without bearer tokens
BINDIR = find_bindir()

needs_postgres = [
    pytest.mark.postgres,
    pytest.mark.skipif(not POSTGRES_URL, reason="needs WAKECALL_TEST_POSTGRES_URL"),
]


# --- the store a node uses ------------------------------------------------------------------
@dataclass
class Target:
    """A store the test inspects, and the flags that make a node use it."""

    store: Store
    flags: tuple[str, ...]

    def tasks(self) -> TaskService:
        """The task operations as the nodes run them (they allow `sleep` and `sh`)."""
        policy = ActionPolicy(commands=CommandPolicy(enabled=True, allow=("sleep", "sh")))
        return TaskService(
            self.store, clock=clock_of(self.store), config=EngineConfig(), policy=policy
        )

    async def create(self, name: str, action: Any, *, owner: str = OWNER, **spec: Any) -> Task:
        schedule = spec.pop("schedule", "on demand")
        made = await self.tasks().create(
            owner, TaskSpec(name=name, schedule=schedule, action=action, **spec)
        )
        return made.task

    async def only_run(self, task: Task) -> Run:
        (run,) = await self.store.list_runs(None, task_id=task.id)
        return run

    async def now(self, run: Run) -> Run:
        """`run` as the store has it now."""
        (found,) = [
            r for r in await self.store.list_runs(None, task_id=run.task_id) if r.id == run.id
        ]
        return found

    async def attempts(self, run: Run) -> list[tuple[str, str]]:
        return [
            (a.status, a.error_message or "") for a in await self.store.list_attempts(None, run.id)
        ]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=needs_postgres)])
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Target]:
    if request.param == "sqlite":
        path = tmp_path / "wakecall.db"
        store = SQLiteStore(path)
        await store.open()
        try:
            yield Target(store, ("--store", str(path)))
        finally:
            await store.close()
        return
    assert POSTGRES_URL is not None
    async with database(POSTGRES_URL) as db:
        yield Target(db.store, ("--store", db.url, "--pg-schema", db.schema, "--pg-pool", "4"))


# --- a node as a process --------------------------------------------------------------------
@dataclass
class Node:
    """A running `wakecall serve` process, its output collected as it comes."""

    process: Process
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    url: str = ""
    _changed: anyio.Event = field(default_factory=anyio.Event)
    _open_streams: int = 2

    @property
    def log(self) -> str:
        return self.stderr.decode(errors="replace")

    async def collect(self, stream: ByteReceiveStream | None, into: bytearray) -> None:
        assert stream is not None
        try:
            async for chunk in stream:
                into.extend(chunk)
                self._bump()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        finally:
            self._open_streams -= 1
            self._bump()

    def _bump(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, pattern: re.Pattern[bytes], where: bytearray) -> re.Match[bytes]:
        """The first match of `pattern` in `where` (stdout or stderr), once it has come."""
        while (found := pattern.search(where)) is None:
            assert self._open_streams == 2, f"the node ended:\n{self.log}"
            await self._changed.wait()
        return found

    def send(self, signum: signal.Signals, *, group: bool = False) -> float:
        """Send `signum` (to the whole process group with `group`, as Ctrl-C in a terminal
        does); when it was sent."""
        if group:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)
        return time.monotonic()

    async def ended(self, signum: signal.Signals, sent: float) -> int:
        """Wait, at most `STOP_BOUND` seconds after `sent`, for the process to end and its
        output to be read; its exit status."""
        with anyio.move_on_after(sent + STOP_BOUND - time.monotonic()):
            await self.process.wait()
            while self._open_streams:
                await self._changed.wait()
        took = time.monotonic() - sent
        assert self.process.returncode is not None, (
            f"still running {took:.1f}s after {signum.name}:\n{self.log}"
        )
        assert not self._open_streams, f"the node's output did not end:\n{self.log}"
        print(f"{signum.name}: exit status {self.process.returncode} after {took:.2f}s")
        return self.process.returncode

    async def stop(self, signum: signal.Signals, *, group: bool = False) -> int:
        return await self.ended(signum, self.send(signum, group=group))


@asynccontextmanager
async def serving(
    tmp_path: Path, flags: tuple[str, ...], *more: str, http: bool = True
) -> AsyncIterator[Node]:
    """`python -m wakecall serve` with `flags` and `more`, over HTTP on a free loopback port
    (its URL read from stderr) or over stdio (the test writes its input)."""
    args = [sys.executable, "-W", "error", "-m", "wakecall", "serve", *flags, *more]
    if http:
        args += ["--http", "--port", "0"]
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAKECALL_")}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), PYTHONUNBUFFERED="1")
    process = await anyio.open_process(
        args,
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL if http else subprocess.PIPE,
        start_new_session=True,  # a group of its own, for Ctrl-C and for the final kill
    )
    node = Node(process)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(node.collect, process.stdout, node.stdout)
            tg.start_soon(node.collect, process.stderr, node.stderr)
            if http:
                with anyio.fail_after(START_TIMEOUT):
                    node.url = (await node.wait_for(SERVING, node.stderr)).group(1).decode()
            try:
                yield node
            finally:
                tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
            await process.aclose()
        sys.stderr.write(node.log)  # shown when the test fails


async def until_status(target: Target, runs: list[Run], status: RunStatus) -> None:
    """Poll the store (another process writes it) until each of `runs` has `status`."""

    async def reached() -> bool:
        return [(await target.now(run)).status for run in runs] == [status] * len(runs)

    with anyio.fail_after(START_TIMEOUT):
        await poll_until(reached, every=0.1)


def no_fire_after(runs: list[Run], instant: datetime) -> list[datetime]:
    """The fires among `runs` later than `instant` (there must be none)."""
    return [r.scheduled_for for r in runs if r.scheduled_for and r.scheduled_for > instant]


# --- the tests ------------------------------------------------------------------------------
async def test_sigterm_lets_runs_in_flight_end_interrupts_the_rest_and_claims_nothing_more(
    tmp_path: Path, target: Target
) -> None:
    retry = RetryPolicy(attempts=2, delay="1s", jitter=False)
    long = await target.create("long", CommandAction(argv=["sleep", "30"]), retry=retry)
    short = await target.create("short", CommandAction(argv=["sleep", "1"]))
    late = await target.create("late", CommandAction(argv=["sleep", "0"]))
    # Another owner's ticker keeps the scheduler busy (its events wake no reader of ours).
    ticker = await target.create("tick", NoopAction(), owner="other", schedule="@every 1s")
    async with serving(tmp_path, target.flags, "--commands", "sleep") as node:
        runs = [await target.tasks().run_now(OWNER, t.id) for t in (long, short)]
        await until_status(target, runs, RunStatus.RUNNING)
        signalled = datetime.now(UTC)
        sent = node.send(signal.SIGTERM)
        # Queued while the node stops: it must not start it.
        queued = await target.tasks().run_now(OWNER, late.id)
        code = await node.ended(signal.SIGTERM, sent)

    assert code == 0, node.log
    assert node.stdout == b""
    assert "SIGTERM: stopping" in node.log
    # The short run ended within the grace period; the long one was cut short and recorded
    # interrupted, to be retried (its policy allows a second attempt) by the next node.
    assert (await target.only_run(short)).status == RunStatus.SUCCESS
    cut = await target.only_run(long)
    assert cut.status == RunStatus.QUEUED, cut
    ((status, message),) = await target.attempts(cut)
    assert status == AttemptStatus.INTERRUPTED and "the scheduler stopped" in message
    # Nothing claimed after the signal: no fire recorded (one second allowed for the pass of
    # the loop under way when the signal came), no queued run started.
    assert (await target.now(queued)).status == RunStatus.QUEUED
    ticks = await target.store.list_runs(None, task_id=ticker.id, limit=1000)
    assert ticks and not no_fire_after(ticks, signalled + timedelta(seconds=1))


async def test_sigterm_answers_a_long_poll_and_the_node_ends(
    tmp_path: Path, target: Target
) -> None:
    ticker = await target.create("tick", NoopAction(), owner="other", schedule="@every 1s")
    accepted = anyio.Event()

    async def on_response(response: httpx2.Response) -> None:
        # A stateful (2025-11-25) session streams each answer: the server sends the headers as
        # it takes the request, long before the answer of a long poll.
        if b'"wait":60' in response.request.content:
            accepted.set()

    answers: list[Any] = []
    answered = anyio.Event()
    async with serving(tmp_path, target.flags) as node:
        timeout = httpx2.Timeout(10, read=90)
        async with httpx2.AsyncClient(
            timeout=timeout, event_hooks={"response": [on_response]}
        ) as http:
            transport = streamable_http_client(node.url, http_client=http)
            async with Client(transport, mode="legacy") as client:
                with anyio.fail_after(10):
                    first = await client.call_tool("get_events", {"wait": 0})
                assert first.structured_content is not None
                cursor = first.structured_content["cursor"]

                async def long_poll() -> None:
                    answers.append(
                        await client.call_tool("get_events", {"after": cursor, "wait": 60})
                    )
                    answered.set()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(long_poll)
                    with anyio.fail_after(10):
                        await accepted.wait()
                    signalled = datetime.now(UTC)
                    code = await node.stop(signal.SIGTERM)
                    with anyio.fail_after(STOP_BOUND):
                        await answered.wait()

    assert code == 0, node.log
    assert node.stdout == b""
    (answer,) = answers
    assert not answer.is_error, answer
    assert answer.structured_content == {"events": [], "cursor": cursor, "more": False}
    ticks = await target.store.list_runs(None, task_id=ticker.id, limit=1000)
    assert ticks and not no_fire_after(ticks, signalled + timedelta(seconds=1))


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="needs WAKECALL_TEST_POSTGRES_URL")
@pytest.mark.skipif(BINDIR is None, reason="needs PostgreSQL's initdb and pg_ctl")
async def test_sigint_with_postgres_down_ends_the_node_and_the_next_one_reaps_its_run(
    tmp_path: Path,
) -> None:
    assert BINDIR is not None
    async with PrivateServer(BINDIR) as server, database(server.url) as db:
        target = Target(db.store, ("--store", db.url, "--pg-schema", db.schema, "--lease", "2s"))
        retry = RetryPolicy(attempts=2, delay="1s", jitter=False)
        long = await target.create("long", CommandAction(argv=["sleep", "30"]), retry=retry)
        async with serving(tmp_path, target.flags, "--commands", "sleep") as node:
            run = await target.tasks().run_now(OWNER, long.id)
            await until_status(target, [run], RunStatus.RUNNING)
            await db.conn.close()
            await server.stop()
            code = await node.stop(signal.SIGINT)
        assert code == 0, node.log
        assert node.stdout == b""
        assert "gave up recording how 1 runs ended" in node.log

        # The database back, a new node takes the run over once its lease has expired.
        await server.start()
        await db.reconnect()
        async with serving(tmp_path, target.flags, "--commands", "sleep") as second:

            async def taken_over() -> bool:
                return bool((await target.only_run(long)).attempt == 2)

            with anyio.fail_after(START_TIMEOUT):
                await poll_until(taken_over)
            assert await second.stop(signal.SIGTERM) == 0
        first_attempt, _ = await target.attempts(await target.only_run(long))
        assert first_attempt[0] == AttemptStatus.INTERRUPTED
        assert "lease expired" in first_attempt[1]


async def test_ctrl_c_stops_a_stdio_server_gracefully(tmp_path: Path, target: Target) -> None:
    # Ctrl-C goes to the server's process group, which a command leaves just after it is
    # spawned: the command marks when it runs in a group of its own.
    marker = tmp_path / "started"
    command = CommandAction(argv=["sh", "-c", 'touch "$0" && exec sleep 30', str(marker)])
    long = await target.create("long", command)
    async with serving(tmp_path, target.flags, "--commands", "sh", http=False) as node:
        assert node.process.stdin is not None
        list_tasks = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "list_tasks", "arguments": {}},
        }
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        for message in (INITIALIZE, initialized, list_tasks):
            await node.process.stdin.send(json.dumps(message).encode() + b"\n")
        with anyio.fail_after(START_TIMEOUT):  # answered once the runtime has started
            await node.wait_for(re.compile(rb'"id":2,"result"'), node.stdout)
        run = await target.tasks().run_now(OWNER, long.id)
        with anyio.fail_after(START_TIMEOUT):
            await poll_until(lambda: anyio.Path(marker).exists(), every=0.05)
        code = await node.stop(signal.SIGINT, group=True)

    assert code == 0, node.log
    # Nothing but the two answers on stdout (it carries the protocol).
    lines = node.stdout.decode().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [1, 2]
    # The run was cut short at the end of the grace period, and recorded so.
    assert (await target.now(run)).status == RunStatus.FAILURE
    ((status, message),) = await target.attempts(run)
    assert status == AttemptStatus.INTERRUPTED and "the scheduler stopped" in message


async def test_a_second_signal_ends_the_node_at_once(tmp_path: Path, target: Target) -> None:
    long = await target.create("long", CommandAction(argv=["sleep", "30"]))
    async with serving(tmp_path, target.flags, "--commands", "sleep") as node:
        run = await target.tasks().run_now(OWNER, long.id)
        await until_status(target, [run], RunStatus.RUNNING)
        node.send(signal.SIGTERM)
        with anyio.fail_after(STOP_BOUND):  # (both pending at once, SIGINT would come first)
            await node.wait_for(re.compile(rb"SIGTERM: stopping"), node.stderr)
        # During the grace period the first one gave the run:
        code = await node.stop(signal.SIGINT)

    assert code == 128 + signal.SIGINT, node.log
    assert node.stdout == b""
    assert "SIGINT again: exiting now" in node.log
    # Nothing recorded it: it stays claimed until its lease expires, then it is reaped.
    assert (await target.now(run)).status == RunStatus.RUNNING
