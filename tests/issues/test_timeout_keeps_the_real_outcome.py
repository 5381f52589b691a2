"""A task with a `timeout` recorded every attempt's end wrongly.

The attempt ran inside a task group when the task had a timeout, so its exception arrived
wrapped: a failed action was recorded as `ExceptionGroup: unhandled errors in a TaskGroup
(1 sub-exception)` instead of its own message, a condition answering `{"proceed": false}` was
a `failure` instead of `skipped`, and each attempt logged a traceback at ERROR. With or without
a timeout an attempt now ends the same way; only the time limit passing makes a `timeout`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from support.loopback import Receiver, serve_receiver
from wakecall.actions.condition import ConditionChecker
from wakecall.actions.webhook import WebhookExecutor
from wakecall.engine import Engine, EngineConfig
from wakecall.models import (
    AttemptStatus,
    EventType,
    NoopAction,
    RunStatus,
    TaskSpec,
    WebhookAction,
)
from wakecall.net import OutboundPolicy, build_http_client
from wakecall.store import SQLiteStore
from wakecall.testing import FakeClock, ScriptedExecutor, advance, run_until_idle, service_for

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
OWNER = "alice"
#: Each case runs once without a timeout and once with one far from being reached.
TIMEOUTS = [None, "30s"]


@dataclass
class Rig:
    engine: Engine
    clock: FakeClock
    store: SQLiteStore
    action: ScriptedExecutor

    async def only_run(self, task_id: str) -> Any:
        (run,) = await self.store.list_runs(None, task_id=task_id)
        return run

    async def events(self) -> list[EventType]:
        return [e.type for e in await self.store.list_events(OWNER)]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serve_receiver() as rec:
        yield rec


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    store = SQLiteStore(tmp_path / "w.db")
    await store.open()
    clock = FakeClock(START)
    action = ScriptedExecutor()
    config = EngineConfig(
        node_id="node-a", poll_interval=timedelta(hours=1), prune_every=timedelta(days=1)
    )
    try:
        async with build_http_client(OutboundPolicy(allow_loopback=True)) as client:
            executors = {"webhook": WebhookExecutor(client), "noop": action}
            with anyio.fail_after(20):
                async with Engine(
                    store,
                    clock=clock,
                    config=config,
                    executors=executors,
                    conditions=ConditionChecker(client),
                ) as engine:
                    await run_until_idle(engine)
                    yield Rig(engine, clock, store, action)
    finally:
        await store.close()


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("limit", TIMEOUTS)
async def test_a_failed_action_is_a_failure_with_its_own_message(
    rig: Rig, limit: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/x"
    task = (
        await service_for(rig.engine).create(
            OWNER,
            TaskSpec(name="hook", schedule="in 1m", action=WebhookAction(url=url), timeout=limit),  # type: ignore[arg-type]
        )
    ).task
    await advance(rig.engine, rig.clock, timedelta(minutes=1))
    run = await rig.only_run(task.id)
    assert run.status == RunStatus.FAILURE
    assert (run.error_message or "").startswith(f"could not connect to {url}")
    (attempt,) = await rig.store.list_attempts(None, run.id)
    assert attempt.status == AttemptStatus.FAILURE
    assert attempt.error_message == run.error_message
    (event,) = await rig.store.list_events(OWNER)
    assert event.type == EventType.RUN_FAILED
    assert event.payload["run"]["errorMessage"] == run.error_message
    assert errors_logged(caplog) == []  # an expected failure logs no traceback


@pytest.mark.parametrize("limit", TIMEOUTS)
async def test_a_condition_that_says_not_to_proceed_skips_the_run(
    rig: Rig, receiver: Receiver, limit: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.replies["/progress"] = [(200, {"proceed": False, "reason": "nothing new upstream"})]
    task = (
        await service_for(rig.engine).create(
            OWNER,
            TaskSpec(
                name="sync",
                schedule="in 1m",
                action=NoopAction(),
                timeout=limit,  # type: ignore[arg-type]
                condition={"url": receiver.url("/progress")},  # type: ignore[arg-type]
            ),
        )
    ).task
    await advance(rig.engine, rig.clock, timedelta(minutes=1))
    run = await rig.only_run(task.id)
    assert run.status == RunStatus.SKIPPED
    assert run.error_message == (
        f"skipped: the condition at {receiver.url('/progress')} said not to proceed: "
        "nothing new upstream"
    )
    assert await rig.events() == [EventType.RUN_SKIPPED]
    assert rig.action.calls == []  # the action did not run
    assert errors_logged(caplog) == []


@pytest.mark.parametrize("limit", TIMEOUTS)
async def test_a_cancel_request_cancels_the_attempt(rig: Rig, limit: str | None) -> None:
    rig.action.hold = True
    task = (
        await service_for(rig.engine).create(
            OWNER,
            TaskSpec(name="held", schedule="in 1m", action=NoopAction(), timeout=limit),  # type: ignore[arg-type]
        )
    ).task
    rig.clock.advance(timedelta(minutes=1))
    await rig.action.wait_for(lambda a: a.active == 1)
    run = await rig.only_run(task.id)
    await rig.store.request_cancel(None, [run.id])
    # The engine hears of the request when it next renews its leases (a third of a lease).
    await advance(rig.engine, rig.clock, rig.engine.config.lease / 3)
    run = await rig.only_run(task.id)
    assert run.status == RunStatus.CANCELLED and run.error_message == "cancelled on request"
    assert rig.action.cancelled == 1


async def test_an_attempt_that_ends_within_its_time_limit_keeps_its_result(rig: Rig) -> None:
    rig.action.hold = True
    task = (
        await service_for(rig.engine).create(
            OWNER,
            TaskSpec(name="quick", schedule="in 1m", action=NoopAction(), timeout="30s"),  # type: ignore[arg-type]
        )
    ).task
    rig.clock.advance(timedelta(minutes=1))
    await rig.action.wait_for(lambda a: a.active == 1)
    rig.clock.advance(timedelta(seconds=29))
    rig.action.release()
    await run_until_idle(rig.engine)
    run = await rig.only_run(task.id)
    assert run.status == RunStatus.SUCCESS and run.output == {"call": 1}
    assert run.error_message is None


async def test_only_the_time_limit_passing_makes_a_timeout(rig: Rig) -> None:
    rig.action.hold = True
    task = (
        await service_for(rig.engine).create(
            OWNER,
            TaskSpec(name="slow", schedule="in 1m", action=NoopAction(), timeout="30s"),  # type: ignore[arg-type]
        )
    ).task
    rig.clock.advance(timedelta(minutes=1))
    await rig.action.wait_for(lambda a: a.active == 1)
    await advance(rig.engine, rig.clock, timedelta(seconds=30))
    run = await rig.only_run(task.id)
    assert run.status == RunStatus.TIMEOUT
    assert run.error_message == "timeout: the attempt took longer than 30s"
    assert rig.action.cancelled == 1


# --- the README's scenario, end to end through the command line ---------------------------
WAKECALL = shutil.which("wakecall", path=str(Path(sys.executable).parent))


def cli_env(tmp_path: Path) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("WAKECALL_")}
    return {**inherited, "HOME": str(tmp_path), "WAKECALL_ALLOW_OUTBOUND": "loopback"}


async def wakecall(tmp_path: Path, *args: str) -> str:
    assert WAKECALL is not None, f"no wakecall console script next to {sys.executable}"
    store = str(tmp_path / "wakecall.db")
    done = await anyio.run_process(
        [WAKECALL, *args, "--store", store], env=cli_env(tmp_path), check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


@pytest.mark.slow
async def test_a_webhook_with_a_timeout_to_a_closed_port_shows_the_connect_error(
    tmp_path: Path,
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/x"
    with anyio.fail_after(120):
        await wakecall(
            tmp_path, "tasks", "add", "on demand", "on demand", "--id", "od",
            "--webhook", url, "--timeout", "30s",
        )  # fmt: skip
        run_id = json.loads(await wakecall(tmp_path, "tasks", "run", "od", "--json"))["id"]

        assert WAKECALL is not None
        server = await anyio.open_process(
            [WAKECALL, "serve", "--store", str(tmp_path / "wakecall.db")],
            env=cli_env(tmp_path),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        async with server:
            assert server.stdin is not None and server.stderr is not None
            log = ""
            finished = f"run {run_id} of task od: failure"
            async for chunk in server.stderr:  # the server logs each finished run
                log += chunk.decode()
                if finished in log:
                    break
            await server.stdin.aclose()  # end of the MCP session: the server stops
            async for chunk in server.stderr:
                log += chunk.decode()
            assert await server.wait() == 0, log

        (run,) = json.loads(await wakecall(tmp_path, "runs", "od", "--json"))["runs"]
    assert run["id"] == run_id and run["status"] == "failure"
    assert run["error_message"].startswith(f"could not connect to {url}"), run
    assert "Traceback" not in log and "ExceptionGroup" not in log, log
