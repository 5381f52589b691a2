"""An agent talking to a real server through the SDK's in-memory client, on a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from wakecall.engine import EngineConfig
from wakecall.server import Runtime, build_server, open_runtime
from wakecall.settings import Settings
from wakecall.testing import FakeClock, run_until_idle

__all__ = ["ToolAgent", "tool_agent"]


@dataclass
class ToolAgent:
    client: Client
    rt: Runtime
    clock: FakeClock

    async def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The structured answer of a call that must succeed."""
        result = await self.client.call_tool(tool, arguments)
        assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
        assert result.structured_content is not None
        return result.structured_content

    async def refusal(self, tool: str, arguments: dict[str, Any]) -> str:
        """The text of a call that must be refused."""
        result = await self.client.call_tool(tool, arguments)
        assert result.is_error, result.structured_content
        return result.content[0].text  # type: ignore[union-attr]

    async def task_count(self) -> int:
        return len(await self.rt.tasks.list_all(self.rt.settings.owner))


@asynccontextmanager
async def tool_agent(tmp_path: Path, clock: FakeClock | None = None) -> AsyncIterator[ToolAgent]:
    """A server on a SQLite file in `tmp_path` and a client connected to it in memory."""
    clock = clock or FakeClock()
    settings = Settings(store=str(tmp_path / "agent.db"))
    config = EngineConfig(poll_interval=timedelta(hours=1), prune_every=timedelta(days=1))
    with anyio.fail_after(30):
        async with open_runtime(settings, clock=clock, config=config) as rt:
            await run_until_idle(rt.engine)
            async with Client(build_server(rt)) as client:
                yield ToolAgent(client, rt, clock)
