"""The Tasks extension through the SDK's in-memory client on the 2026-07-28 wire: a client
that declares it gets `run_now` as a task that follows the run; others get the run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.shared.exceptions import MCPError
from mcp.types import SubscriptionsAcknowledgedNotification

from support.events_client import CreateTaskResult, Notes, TasksClient, request
from wakecall.actions import default_executors
from wakecall.engine import EngineConfig
from wakecall.server import Runtime, build_server, open_runtime
from wakecall.settings import Settings
from wakecall.testing import FakeClock, ScriptedExecutor, run_until_idle


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = Settings(store=str(tmp_path / "w.db"), commands=("sleep",))
    config = EngineConfig(poll_interval=timedelta(hours=1), prune_every=timedelta(days=1))
    with anyio.fail_after(30):
        async with open_runtime(settings, clock=FakeClock(), config=config) as runtime:
            await run_until_idle(runtime.engine)
            yield runtime


async def a_task(client: Client, action: dict[str, Any] | None = None) -> str:
    with anyio.fail_after(10):
        made = await client.call_tool(
            "create_task",
            {"name": "job", "schedule": "on demand", "action": action or {"type": "noop"}},
        )
    assert made.structured_content is not None, made.content
    return str(made.structured_content["id"])


async def created_task(client: Client, task_id: str) -> CreateTaskResult:
    with anyio.fail_after(10):
        answer = await client.session.call_tool("run_now", {"task_id": task_id}, allow_claimed=True)
    assert isinstance(answer, CreateTaskResult), answer
    return answer


async def test_run_now_is_a_task_that_follows_its_run(tmp_path: Path) -> None:
    held = ScriptedExecutor(hold=True)  # the run stays running until released
    settings = Settings(store=str(tmp_path / "w.db"))
    config = EngineConfig(poll_interval=timedelta(hours=1), prune_every=timedelta(days=1))
    executors = {**default_executors(), "noop": held}
    with anyio.fail_after(30):
        async with (
            open_runtime(settings, clock=FakeClock(), config=config, executors=executors) as rt,
            Client(build_server(rt), extensions=[TasksClient()]) as client,
        ):
            task_id = await a_task(client)
            created = await created_task(client, task_id)
            assert created.status == "working" and created.task_id.startswith("wtk_")
            assert len(created.task_id) > 30 and created.ttl_ms and created.poll_interval_ms
            await held.wait_for(lambda h: h.active == 1)
            working = await request(client, "tasks/get", {"taskId": created.task_id})
            assert (
                working["status"] == "working"
                and working["statusMessage"] == "running attempt 1 of 1"
            )
            held.release()
            await run_until_idle(rt.engine)
            done = await request(client, "tasks/get", {"taskId": created.task_id})
    assert done["status"] == "completed" and done["resultType"] == "complete"
    result = done["result"]
    assert result["isError"] is False
    assert result["structuredContent"]["status"] == "success"
    assert result["structuredContent"]["task_id"] == task_id


async def test_the_sdk_client_resolves_the_task_to_the_finished_run(rt: Runtime) -> None:
    tasks = TasksClient(on_poll=lambda: run_until_idle(rt.engine))
    async with Client(build_server(rt), extensions=[tasks]) as client:
        task_id = await a_task(client)
        with anyio.fail_after(10):
            result = await client.call_tool("run_now", {"task_id": task_id})
    assert len(tasks.created) == 1
    assert result.structured_content is not None
    assert result.structured_content["status"] == "success"


async def test_clients_without_the_extension_get_todays_answer(rt: Runtime) -> None:
    async with Client(build_server(rt)) as client:
        task_id = await a_task(client)
        with anyio.fail_after(10):
            result = await client.call_tool("run_now", {"task_id": task_id})
            assert result.structured_content is not None
            assert result.structured_content["status"] == "queued"
            with pytest.raises(MCPError) as undeclared:
                await request(client, "tasks/get", {"taskId": "wtk_anything"})
    assert undeclared.value.code == -32021


async def test_a_task_is_its_owners_alone_and_unknown_ids_are_invalid(rt: Runtime) -> None:
    async with Client(build_server(rt), extensions=[TasksClient()]) as client:
        created = await created_task(client, await a_task(client))
        with anyio.fail_after(10), pytest.raises(MCPError) as unknown:
            await request(client, "tasks/get", {"taskId": created.task_id + "x"})
        assert unknown.value.code == -32602 and "Failed to retrieve task" in unknown.value.message
        token = AccessToken(token="t-bob", client_id="bob", scopes=["wakecall"])
        reset = auth_context_var.set(AuthenticatedUser(token))
        try:
            for method in ("tasks/get", "tasks/cancel"):
                with anyio.fail_after(10), pytest.raises(MCPError) as foreign:
                    await request(client, method, {"taskId": created.task_id})
                assert foreign.value.code == -32602
        finally:
            auth_context_var.reset(reset)


async def test_tasks_cancel_cancels_the_run(rt: Runtime) -> None:
    async with Client(build_server(rt), extensions=[TasksClient()]) as client:
        task_id = await a_task(client, {"type": "command", "argv": ["sleep", "30"]})
        created = await created_task(client, task_id)

        async def task() -> dict[str, Any]:
            return await request(client, "tasks/get", {"taskId": created.task_id})

        with anyio.fail_after(20):
            # A client polls tasks/get (the spec's flow); the engine starts the run on its own.
            while not (await task())["statusMessage"].startswith("running"):  # noqa: ASYNC110
                await anyio.sleep(0.02)
            ack = await request(client, "tasks/cancel", {"taskId": created.task_id})
            assert ack["resultType"] == "complete"
            while (ended := await task())["status"] == "working":  # noqa: ASYNC110
                await anyio.sleep(0.02)
            assert ended["status"] == "cancelled"
            # No input is ever outstanding: an update is acknowledged and changes nothing.
            update = {"taskId": created.task_id, "inputResponses": {"x": {"action": "accept"}}}
            assert (await request(client, "tasks/update", update))["resultType"] == "complete"
            assert (await task())["status"] == "cancelled"


async def test_a_listen_stream_with_task_ids_pushes_each_status_change(rt: Runtime) -> None:
    notes = Notes()
    acks: list[Any] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, SubscriptionsAcknowledgedNotification):
            acks.append(message.params.notifications.model_dump(by_alias=True))

    async with Client(
        build_server(rt), extensions=[TasksClient(), notes], message_handler=on_message
    ) as client:
        sleeper = await a_task(client, {"type": "command", "argv": ["sleep", "30"]})
        created = await created_task(client, sleeper)
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                listen = {"notifications": {"taskIds": [created.task_id, "wtk_not_mine"]}}
                tg.start_soon(request, client, "subscriptions/listen", listen)
                await notes.wait_for(lambda: notes.of("notifications/tasks"))
                assert acks and acks[0]["taskIds"] == [created.task_id]
                assert notes.of("notifications/tasks")[0]["status"] == "working"
                await request(client, "tasks/cancel", {"taskId": created.task_id})
                await notes.wait_for(
                    lambda: notes.of("notifications/tasks")[-1]["status"] == "cancelled"
                )
                tg.cancel_scope.cancel()
    ended = notes.of("notifications/tasks")[-1]
    assert ended["taskId"] == created.task_id
    assert ended["_meta"]["io.modelcontextprotocol/subscriptionId"] is not None
    # Every notification is the whole task, as tasks/get shows it.
    assert {"taskId", "status", "createdAt", "lastUpdatedAt", "ttlMs"} <= set(ended)


async def test_task_ids_on_a_listen_stream_need_the_extension(rt: Runtime) -> None:
    async with Client(build_server(rt)) as client:
        with anyio.fail_after(10), pytest.raises(MCPError) as caught:
            await request(client, "subscriptions/listen", {"notifications": {"taskIds": ["x"]}})
    assert caught.value.code == -32021
