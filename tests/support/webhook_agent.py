"""An agent of a webhook subscription, in process: a runtime on a SQLite file (opening it
again is a restart of the server) and the SDK's client, with the steps tests take."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from support.events_client import request
from support.hooks import HookReceiver
from support.loopback import CONFIG
from support.postgres import database
from support.tls import LoopbackTLS
from wakecall.server import Runtime, build_server, open_runtime
from wakecall.settings import Settings
from wakecall.testing import FakeClock, run_until_idle

COMPLETED = "task.run.completed"


@dataclass
class Agent:
    rt: Runtime
    client: Client
    clock: FakeClock

    async def call(self, tool: str, **args: Any) -> dict[str, Any]:
        with anyio.fail_after(10):
            result = await self.client.call_tool(tool, args)
        assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
        assert result.structured_content is not None
        return result.structured_content

    async def ext(self, method: str, **params: Any) -> dict[str, Any]:
        with anyio.fail_after(15):
            return await request(self.client, method, params)

    async def run(self, task_id: str) -> None:
        await self.call("run_now", task_id=task_id)
        await self.settle()

    async def settle(self) -> None:
        with anyio.fail_after(15):
            await run_until_idle(self.rt.engine)
            await self.rt.callbacks.wait_idle()
            # Deliveries that ended are settled on the subscriptions (and the next queued)
            # by the feeder: one step of it here rather than waiting for its wake-up.
            while await self.rt.feeder.step():
                pass

    async def subscribe(self, receiver: HookReceiver, **params: Any) -> dict[str, Any]:
        return await self.ext(
            "events/subscribe",
            name=COMPLETED,
            delivery={"mode": "webhook", "url": receiver.url(), "secret": receiver.secret},
            **params,
        )


def settings_for(
    tmp_path: Path, tls: LoopbackTLS, allow_outbound: tuple[str, ...] = ("loopback",)
) -> Settings:
    return Settings(
        store=str(tmp_path / "w.db"), allow_outbound=allow_outbound, outbound_ca=str(tls.ca_file)
    )


@asynccontextmanager
async def open_agent(
    tmp_path: Path,
    tls: LoopbackTLS,
    clock: FakeClock,
    allow_outbound: tuple[str, ...] = ("loopback",),
) -> AsyncIterator[Agent]:
    """A runtime on `tmp_path`'s store and an in-memory client; opening it again is a
    restart of the server (`allow_outbound` its `--allow-outbound`)."""
    settings = settings_for(tmp_path, tls, allow_outbound)
    with anyio.fail_after(30):
        async with open_runtime(settings, clock=clock, config=CONFIG) as rt:
            await run_until_idle(rt.engine)
            async with Client(build_server(rt)) as client:
                yield Agent(rt, client, clock)


@asynccontextmanager
async def open_postgres_agents(
    tmp_path: Path, tls: LoopbackTLS, clock: FakeClock, url: str
) -> AsyncIterator[tuple[Agent, Agent]]:
    """Two nodes, "a" and "b", on a fresh schema of the PostgreSQL server at `url`, each with
    an in-memory client."""
    async with database(url) as db:
        settings = replace(
            settings_for(tmp_path, tls), store=db.url, pg_schema=db.schema, pg_pool=4
        )
        async with (
            open_runtime(settings, clock=clock, config=replace(CONFIG, node_id="a")) as a,
            open_runtime(settings, clock=clock, config=replace(CONFIG, node_id="b")) as b,
            Client(build_server(a)) as on_a,
            Client(build_server(b)) as on_b,
        ):
            yield Agent(a, on_a, clock), Agent(b, on_b, clock)


async def a_task(agent: Agent, **metadata: str) -> str:
    made = await agent.call(
        "create_task", name="job", schedule="on demand", action={"type": "noop"}, metadata=metadata
    )
    return str(made["id"])
