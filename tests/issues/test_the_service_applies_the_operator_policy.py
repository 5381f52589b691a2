"""The operator's policy is the task service's, whoever calls it.

Found: `ActionPolicy` lived in the task-file module and each caller (tools, task files) applied
it itself, so a library user of `TaskService.create` could store a task the server would never
run (a webhook to a private address, a command); and the command line built a scheduler it never
started to reach the service, on this machine's clock where the server uses the database's."""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wakecall.actions.command import CommandPolicy
from wakecall.actions.policy import ActionPolicy
from wakecall.cli.context import open_context
from wakecall.clock import OffsetClock
from wakecall.engine import EngineConfig, TaskService
from wakecall.errors import InvalidInput, UnsafeURL
from wakecall.models import CommandAction, TaskPatch, TaskSpec, WebhookAction
from wakecall.net import OutboundPolicy
from wakecall.store import SQLiteStore
from wakecall.testing import FakeClock

POSTGRES_URL = os.environ.get("WAKECALL_TEST_POSTGRES_URL")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "w.db")
    await opened.open()
    yield opened
    await opened.close()


def _service(store: SQLiteStore, policy: ActionPolicy | None = None) -> TaskService:
    return TaskService(store, clock=FakeClock(), config=EngineConfig(), policy=policy)


async def test_a_library_user_cannot_store_a_task_the_server_would_not_run(
    store: SQLiteStore,
) -> None:
    tasks = _service(store)
    private = WebhookAction(url="http://10.1.2.3/hook")
    with pytest.raises(UnsafeURL, match=r"10\.0\.0\.0/8"):
        await tasks.create("alice", TaskSpec(name="x", schedule="@daily", action=private))
    with pytest.raises(InvalidInput, match="command actions are disabled"):
        command = CommandAction(argv=["true"])
        await tasks.create("alice", TaskSpec(name="x", schedule="@daily", action=command))
    with pytest.raises(UnsafeURL, match="loopback"):
        spec = TaskSpec(name="x", schedule="@daily", callback_url="http://127.0.0.1:9/x")
        await tasks.create("alice", spec)
    assert await store.list_tasks(None) == []


async def test_a_change_is_held_to_the_same_policy(store: SQLiteStore) -> None:
    tasks = _service(store)
    made = await tasks.create("alice", TaskSpec(name="x", schedule="@daily"))
    with pytest.raises(UnsafeURL):
        patch = TaskPatch(action=WebhookAction(url="http://192.168.1.1/x"))
        await tasks.patch("alice", made.task.id, patch)
    assert (await store.get_task("alice", made.task.id)).action["type"] == "wakeup"


async def test_what_the_operator_allows_is_stored(store: SQLiteStore) -> None:
    policy = ActionPolicy(
        OutboundPolicy.parse_allow(["10.0.0.0/8"]), CommandPolicy(enabled=True, allow=("true",))
    )
    tasks = _service(store, policy)
    private = WebhookAction(url="http://10.1.2.3/hook")
    await tasks.create("alice", TaskSpec(name="x", schedule="@daily", action=private))
    command = CommandAction(argv=["true"])
    await tasks.create("alice", TaskSpec(name="y", schedule="@daily", action=command))
    assert len(await store.list_tasks("alice")) == 2


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="set WAKECALL_TEST_POSTGRES_URL")
async def test_the_command_line_schedules_by_the_database_clock_as_the_server_does() -> None:
    from support.postgres import database

    assert POSTGRES_URL is not None
    async with database(POSTGRES_URL) as db:
        args = argparse.Namespace(
            store=db.url, owner=None, pg_schema=db.schema, config=None, json=False
        )
        async with open_context(args, create=False) as ctx:
            assert isinstance(ctx.service.clock, OffsetClock)
            made = await ctx.service.create("local", TaskSpec(name="x", schedule="in 1h"))
        server_now = await db.value("SELECT now()")
        fire = made.task.next_fire_at
        assert fire is not None
        assert abs((fire - server_now).total_seconds() - 3600) < 60
