"""Crash safety with real processes: SIGKILL the server while a run is in flight, start it
again, and check that nothing was lost and no slot fired twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest

from wakecall.actions.command import CommandPolicy
from wakecall.actions.policy import ActionPolicy
from wakecall.clock import SystemClock
from wakecall.engine import EngineConfig, TaskService
from wakecall.models import CommandAction, NoopAction, RetryPolicy, RunStatus, TaskSpec
from wakecall.store import SQLiteStore

pytestmark = pytest.mark.slow


def _spawn(db: Path, home: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home),
        "WAKECALL_COMMANDS": "sleep",
        "WAKECALL_LEASE": "2s",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "wakecall", "serve", "--http", "--port", "0", "--store", str(db)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its process group holds the `sleep` it runs too
    )


@pytest.fixture
def servers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


async def _until(store: SQLiteStore, check: Callable[[], object]) -> None:
    """Poll the database (another process writes it) until `check()` is true."""
    while not await check():  # type: ignore[misc]  # noqa: ASYNC110 - another process writes
        await anyio.sleep(0.05)


async def test_a_killed_server_loses_nothing_and_fires_no_slot_twice(
    tmp_path: Path, servers: list[subprocess.Popen[bytes]]
) -> None:
    db = tmp_path / "crash.db"
    store = SQLiteStore(db)
    await store.open()
    try:
        # The server's limits and policy (it runs `sleep`), on the system clock.
        policy = ActionPolicy(commands=CommandPolicy(enabled=True, allow=("sleep",)))
        tasks = TaskService(store, clock=SystemClock(), config=EngineConfig(), policy=policy)
        slow = (
            await tasks.create(
                "alice",
                TaskSpec(
                    name="slow",
                    schedule="in 1s",
                    action=CommandAction(argv=["sleep", "2"]),
                    retry=RetryPolicy(attempts=2, delay="1s", jitter=False),
                ),
            )
        ).task
        ticker = (
            await tasks.create(
                "alice", TaskSpec(name="tick", schedule="@every 1s", action=NoopAction())
            )
        ).task

        servers.append(_spawn(db, tmp_path))

        async def slow_is_running() -> bool:
            runs = await store.list_runs(None, task_id=slow.id)
            return bool(runs) and runs[0].status == RunStatus.RUNNING

        with anyio.fail_after(30):
            await _until(store, slow_is_running)
        os.killpg(servers[0].pid, signal.SIGKILL)
        servers[0].wait(timeout=10)

        (interrupted,) = await store.list_runs(None, task_id=slow.id)
        assert interrupted.status == RunStatus.RUNNING and interrupted.attempt == 1

        servers.append(_spawn(db, tmp_path))

        async def slow_is_done() -> bool:
            runs = await store.list_runs(None, task_id=slow.id)
            return bool(runs) and runs[0].status.is_terminal

        with anyio.fail_after(40):
            await _until(store, slow_is_done)

        (run,) = await store.list_runs(None, task_id=slow.id)
        assert run.id == interrupted.id and run.status == RunStatus.SUCCESS and run.attempt == 2
        attempts = await store.list_attempts(None, run.id)
        assert [a.status for a in attempts] == ["interrupted", "success"]
        assert "lease expired" in (attempts[0].error_message or "")

        # No task lost; every fire of the ticker made at most one run.
        assert {t.id for t in await store.list_tasks(None)} == {slow.id, ticker.id}
        ticks = await store.list_runs(None, task_id=ticker.id, limit=1000)
        fires = [r.scheduled_for for r in ticks]
        assert len(fires) == len(set(fires)) and len(fires) >= 2
        # The downtime's missed fires were handled by the `latest` catch-up policy: one run
        # stands for them, so the gap between consecutive fires shows as one catch-up run.
        assert (
            any(r.trigger == "catchup" for r in ticks)
            or max(
                (b - a).total_seconds()
                for a, b in zip(sorted(fires), sorted(fires)[1:], strict=False)
            )
            <= 1.0
        )
    finally:
        await store.close()
