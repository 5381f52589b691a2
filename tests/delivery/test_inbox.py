"""The inbox's `peek`: the durable log read from a cursor, waiting for news, without moving the
position the agent last read (a view watching the log must not mark the agent's events read)."""

from __future__ import annotations

from pathlib import Path

import anyio
import anyio.lowlevel

from support.loopback import open_loop, real_time_clock


async def test_peek_reads_after_a_cursor_and_leaves_the_read_position_alone(
    tmp_path: Path,
) -> None:
    async with open_loop(tmp_path, real_time_clock()) as loop:
        task = await loop.call("create_task", name="t", schedule="@daily")
        for _ in range(3):
            await loop.call("run_now", task_id=task["id"])
            await loop.settle()
        inbox = loop.rt.inbox
        owner = loop.rt.settings.owner
        before = await inbox.last_read(owner)
        events = await inbox.peek(owner, after=0)
        assert [e.cursor for e in events] == [1, 2, 3]
        assert [e.cursor for e in await inbox.peek(owner, after=1, limit=1)] == [2]
        assert await inbox.peek(owner, after=3, wait=0) == []
        assert await inbox.last_read(owner) == before
        assert (await inbox.hint(owner)) is not None  # the agent still has 3 unread


async def test_peek_waits_for_the_next_event_and_returns_at_once_when_the_server_stops(
    tmp_path: Path,
) -> None:
    async with open_loop(tmp_path, real_time_clock()) as loop:
        task = await loop.call("create_task", name="t", schedule="@daily")
        inbox = loop.rt.inbox
        owner = loop.rt.settings.owner
        found = []
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:

                async def wait() -> None:
                    found.extend(await inbox.peek(owner, after=0, wait=30))

                tg.start_soon(wait)
                await anyio.lowlevel.checkpoint()
                await loop.call("run_now", task_id=task["id"])
                await loop.settle()
        assert [e.run_id for e in found] != [] and found[0].task_id == task["id"]
        assert inbox.open
        inbox.stop_waiting()
        assert not inbox.open
        with anyio.fail_after(1):  # a 30 s wait answers at once
            assert await inbox.peek(owner, after=found[-1].cursor, wait=30) == []
