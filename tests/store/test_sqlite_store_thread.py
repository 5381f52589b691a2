"""The SQLite store's thread: a call someone waits for goes before the engine's passes still
waiting, and a flood of such calls never starves those passes."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import pytest

from wakecall.store.sqlite.connection import StoreThread


@pytest.fixture
async def thread() -> AsyncIterator[StoreThread]:
    store_thread = StoreThread("test-store-thread")
    yield store_thread
    with anyio.fail_after(10):
        await store_thread.stop()


def noting(order: list[str], name: str) -> Callable[[sqlite3.Connection], str]:
    def work(conn: sqlite3.Connection) -> str:
        order.append(name)
        return name

    return work


def hold_the_thread(
    thread: StoreThread, conn: sqlite3.Connection
) -> tuple[threading.Event, threading.Event, Callable[[], Awaitable[None]]]:
    """A background call that keeps the thread busy until `release` is set: the events that
    say it started and release it, and the call to start."""
    started, release = threading.Event(), threading.Event()

    def busy(conn: sqlite3.Connection) -> None:
        started.set()
        release.wait(10)

    async def run_busy() -> None:
        await thread.run(busy, conn, background=True)

    return started, release, run_busy


async def test_a_waited_for_call_goes_before_queued_passes(thread: StoreThread) -> None:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    order: list[str] = []
    started, release, run_busy = hold_the_thread(thread, conn)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_busy)
            await anyio.to_thread.run_sync(started.wait)
            for name in ("pass 1", "pass 2"):
                tg.start_soon(lambda n=name: thread.run(noting(order, n), conn, background=True))
                await anyio.wait_all_tasks_blocked()  # handed over, in this order
            tg.start_soon(lambda: thread.run(noting(order, "tool call"), conn))
            await anyio.wait_all_tasks_blocked()
            release.set()
    assert order == ["tool call", "pass 1", "pass 2"]
    conn.close()


async def test_a_flood_of_calls_lets_a_waiting_pass_through(thread: StoreThread) -> None:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    order: list[str] = []
    started, release, run_busy = hold_the_thread(thread, conn)
    calls = StoreThread.URGENT_IN_A_ROW + 4
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_busy)
            await anyio.to_thread.run_sync(started.wait)
            tg.start_soon(lambda: thread.run(noting(order, "pass"), conn, background=True))
            await anyio.wait_all_tasks_blocked()
            for n in range(calls):
                tg.start_soon(lambda n=n: thread.run(noting(order, f"call {n}"), conn))
                await anyio.wait_all_tasks_blocked()
            await anyio.wait_all_tasks_blocked()
            release.set()
    assert order.index("pass") == StoreThread.URGENT_IN_A_ROW
    assert [o for o in order if o != "pass"] == [f"call {n}" for n in range(calls)]
    conn.close()


async def test_bulk_work_can_tell_that_a_waited_for_call_is_queued(thread: StoreThread) -> None:
    """What the prune's slices ask between statements (`calls_waiting`): only a call someone
    waits for counts, not another background pass."""
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    seen: list[bool] = []
    started, release, run_busy = hold_the_thread(thread, conn)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_busy)
            await anyio.to_thread.run_sync(started.wait)
            seen.append(thread.calls_waiting())
            tg.start_soon(lambda: thread.run(noting([], "pass"), conn, background=True))
            await anyio.wait_all_tasks_blocked()
            seen.append(thread.calls_waiting())
            tg.start_soon(lambda: thread.run(noting([], "tool call"), conn))
            await anyio.wait_all_tasks_blocked()
            seen.append(thread.calls_waiting())
            release.set()
    assert seen == [False, False, True]
    assert not thread.calls_waiting()
