"""Flow control on a PostgreSQL cluster: three processes, each an engine on one schema, race
for runs held by a concurrency key and a rate limit; the limits hold across them and no run is
lost. Skipped unless `WAKECALL_TEST_POSTGRES_URL` is set."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import anyio
import asyncpg
import pytest

from wakecall.engine import EngineConfig, TaskService
from wakecall.models import NoopAction, RunStatus, TaskSpec
from wakecall.store import clock_of
from wakecall.store.postgres import PostgresStore

URL = os.environ.get("WAKECALL_TEST_POSTGRES_URL")
NODE_SCRIPT = Path(__file__).parent.parent / "support" / "flow_node.py"

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.skipif(not URL, reason="set WAKECALL_TEST_POSTGRES_URL (scripts/start-postgres)"),
]


def _start_node(schema: str, node: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(NODE_SCRIPT), URL or "", schema, node],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[PostgresStore, str]]:
    """A fresh schema with a probe table, and three node processes running on it."""
    schema = f"flow_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    store = PostgresStore(URL or "", schema=schema)
    await store.open()
    conn = await asyncpg.connect(URL)
    await conn.execute(
        f'CREATE TABLE "{schema}".probe (key text PRIMARY KEY, running int, peak int)'
    )
    procs = [_start_node(schema, f"node-{n}") for n in range(3)]
    try:
        with anyio.fail_after(60):
            for proc in procs:
                assert proc.stdout is not None
                line = await anyio.to_thread.run_sync(proc.stdout.readline)
                assert line.strip() == b"ready", line
        yield store, schema
    finally:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.close()  # the node stops
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            assert proc.stdout is not None
            proc.stdout.close()
        await conn.close()
        await store.drop_schema()
        await store.close()


async def _peak(store: PostgresStore, schema: str, key: str) -> int:
    conn = await asyncpg.connect(URL)
    try:
        return int(await conn.fetchval(f'SELECT peak FROM "{schema}".probe WHERE key = $1', key))
    finally:
        await conn.close()


async def test_three_nodes_never_exceed_a_concurrency_key_or_a_rate_limit_and_lose_no_run(
    cluster: tuple[PostgresStore, str],
) -> None:
    store, schema = cluster
    clock = clock_of(store)
    tasks = TaskService(store, clock=clock, config=EngineConfig())
    limited = {"key": "crm", "limit": 2}
    rate = {"key": "api", "limit": 3, "period": "1s"}
    ids = []
    for n in range(24):
        spec = TaskSpec(name=f"crm {n}", schedule="in 1s", action=NoopAction(), concurrency=limited)  # type: ignore[arg-type]
        ids.append((await tasks.create("alice", spec)).task.id)
    for n in range(7):
        spec = TaskSpec(name=f"api {n}", schedule="in 1s", action=NoopAction(), rate_limit=rate)  # type: ignore[arg-type]
        ids.append((await tasks.create("alice", spec)).task.id)
    with anyio.fail_after(60):
        while True:
            runs = await store.list_runs("alice", limit=100)
            if len(runs) == len(ids) and all(r.status == RunStatus.SUCCESS for r in runs):
                break
            assert all(
                r.status in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.SUCCESS) for r in runs
            )
            await anyio.sleep(0.1)
    # Each task's one run, none lost nor skipped; the work was shared by the nodes.
    assert sorted(r.task_id for r in runs) == sorted(ids)
    assert len({r.output["node"] for r in runs}) >= 2
    assert await _peak(store, schema, "crm") == 2
    # The rate limit: never more than 3 starts in any second (on the instants the nodes
    # judged by), so the 7 runs took at least two more windows.
    starts = sorted(r.started_at for r in runs if r.task_id in ids[24:] and r.started_at)
    assert len(starts) == 7
    for i, at in enumerate(starts):
        assert sum(1 for s in starts[i:] if s < at + timedelta(seconds=1)) <= 3
    assert starts[-1] - starts[0] >= timedelta(seconds=2)
