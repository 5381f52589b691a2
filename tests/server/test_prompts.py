"""Prompts for the loops wakecall exists for, and completions of their arguments and of the
resource templates' `task_id`, through the SDK's client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, types
from mcp.server import MCPServer
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken

from wakecall.server import Runtime, build_server, open_runtime
from wakecall.settings import Settings
from wakecall.testing import FakeClock

TASK_TEMPLATE = types.ResourceTemplateReference(
    type="ref/resource", uri="wakecall://tasks/{task_id}"
)


def prompt(name: str) -> types.PromptReference:
    return types.PromptReference(type="ref/prompt", name=name)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Runtime, MCPServer[Any]]]:
    with anyio.fail_after(20):
        async with open_runtime(Settings(store=str(tmp_path / "w.db")), clock=FakeClock()) as rt:
            yield rt, build_server(rt)


@contextmanager
def as_owner(owner: str) -> Iterator[None]:
    token = auth_context_var.set(
        AuthenticatedUser(AccessToken(token=owner, client_id=owner, scopes=[]))
    )
    try:
        yield
    finally:
        auth_context_var.reset(token)


async def test_the_handshake_declares_prompts_completions_and_tool_list_changes(
    served: tuple[Runtime, MCPServer[Any]],
) -> None:
    _, server = served
    with anyio.fail_after(10):
        async with Client(server, mode="legacy") as client:
            caps = client.server_capabilities
            assert caps.prompts is not None and caps.completions is not None
            assert caps.tools is not None and caps.tools.list_changed is True
            assert caps.experimental == {"claude/channel": {}}


async def test_each_loop_has_a_prompt_with_arguments_that_names_the_tools(
    served: tuple[Runtime, MCPServer[Any]],
) -> None:
    _, server = served
    with anyio.fail_after(10):
        async with Client(server) as client:
            listed = {p.name: p for p in (await client.list_prompts()).prompts}
            assert set(listed) == {"follow_up", "watch_until", "adaptive_report", "review_task"}
            for shown in listed.values():
                assert shown.title and shown.description and shown.arguments
                assert all(a.description for a in shown.arguments)
            follow = await client.get_prompt("follow_up", {"what": "PR 42", "when": "2h"})
            text = follow.messages[0].content.text  # type: ignore[union-attr]
            assert '"in": "2h", "reason": "follow up: PR 42"' in text and "schedule_wakeup" in text
            watch = await client.get_prompt(
                "watch_until",
                {"condition": "the deploy is live", "every": "15m", "give_up_after": "2h"},
            )
            text = watch.messages[0].content.text  # type: ignore[union-attr]
            assert '"schedule": "@every 15m"' in text and '"max_runs": 8' in text
            assert "delete the task" in text
            report = await client.get_prompt(
                "adaptive_report", {"topic": "open incidents", "timezone": "Europe/Paris"}
            )
            text = report.messages[0].content.text  # type: ignore[union-attr]
            assert '"timezone": "Europe/Paris"' in text and "patch_schedule" in text
            review = await client.get_prompt("review_task", {"task_id": "tsk_1"})
            assert "list_runs" in review.messages[0].content.text  # type: ignore[union-attr]


async def test_zones_and_durations_are_completed(served: tuple[Runtime, MCPServer[Any]]) -> None:
    _, server = served
    with anyio.fail_after(10):
        async with Client(server) as client:
            zones = await client.complete(
                prompt("adaptive_report"), {"name": "timezone", "value": "europe/pa"}
            )
            assert zones.completion.values == ["Europe/Paris"]
            by_city = await client.complete(
                prompt("adaptive_report"), {"name": "timezone", "value": "new_y"}
            )
            assert by_city.completion.values == ["America/New_York"]
            every = await client.complete(prompt("watch_until"), {"name": "every", "value": "1"})
            assert every.completion.values == ["10m", "15m", "1h", "12h", "1d"]
            unknown = await client.complete(
                prompt("test_prompt_with_arguments"), {"name": "arg1", "value": "x"}
            )
            assert unknown.completion.values == []


async def test_task_ids_are_completed_for_their_owner_only(
    served: tuple[Runtime, MCPServer[Any]],
) -> None:
    _, server = served
    with anyio.fail_after(10):
        with as_owner("alice"):
            async with Client(server) as client:
                mine = [
                    (await client.call_tool("create_task", {"name": n, "schedule": "@daily"}))
                    for n in ("a", "b")
                ]
                ids = sorted(r.structured_content["id"] for r in mine)  # type: ignore[index]
                shown = await client.complete(TASK_TEMPLATE, {"name": "task_id", "value": ""})
                assert shown.completion.values == ids
                one = await client.complete(
                    prompt("review_task"), {"name": "task_id", "value": ids[1][:-1]}
                )
                assert one.completion.values == [ids[1]]
        with as_owner("bob"):
            async with Client(server) as client:
                shown = await client.complete(TASK_TEMPLATE, {"name": "task_id", "value": "tsk"})
                assert shown.completion.values == []
