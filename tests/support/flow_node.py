"""One node of the three-process flow-control test: an engine on a PostgreSQL schema whose
`noop` action counts, in a shared probe row, how many actions of its task's flow key run at
once across every process (and the most ever seen), holding each for a moment.

Run as `python tests/support/flow_node.py URL SCHEMA NODE`; prints "ready" once the engine
runs, and stops when its standard input closes.
"""

from __future__ import annotations

import sys
from datetime import timedelta

import anyio
import anyio.to_thread
import asyncpg

from wakecall.actions import ActionContext
from wakecall.engine import Engine, EngineConfig
from wakecall.store import clock_of
from wakecall.store.postgres import PostgresStore

#: How long each action holds its slot (real time: other processes race for the slots).
HOLD_SECONDS = 0.05


class ProbeExecutor:
    """Counts the actions running at once per flow key in `probe` (key, running, peak)."""

    def __init__(self, conn: asyncpg.Connection, table: str) -> None:
        self.conn = conn
        self.table = table
        self.lock = anyio.Lock()

    async def execute(self, ctx: ActionContext) -> object:
        key = str((ctx.task.concurrency or ctx.task.rate_limit or {"key": "-"})["key"])
        async with self.lock:  # one connection: one statement at a time
            await self.conn.execute(
                f"INSERT INTO {self.table} AS p (key, running, peak) VALUES ($1, 1, 1) "
                "ON CONFLICT (key) DO UPDATE SET running = p.running + 1, "
                "peak = greatest(p.peak, p.running + 1)",
                key,
            )
        await anyio.sleep(HOLD_SECONDS)
        async with self.lock:
            await self.conn.execute(
                f"UPDATE {self.table} SET running = running - 1 WHERE key = $1", key
            )
        return {"node": ctx.run.claimed_by}


async def main(url: str, schema: str, node: str) -> None:
    store = PostgresStore(url, schema=schema, max_pool=4)
    await store.open()
    conn = await asyncpg.connect(url)
    try:
        config = EngineConfig(node_id=node, poll_interval=timedelta(seconds=2))
        executors = {"noop": ProbeExecutor(conn, f'"{schema}".probe')}
        async with Engine(store, clock=clock_of(store), config=config, executors=executors):
            print("ready", flush=True)
            await anyio.to_thread.run_sync(sys.stdin.read)  # until the test closes it
    finally:
        await conn.close()
        await store.close()


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:4])
