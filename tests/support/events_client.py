"""A client's side of the MCP Events and Tasks extensions for the tests: requests the SDK's
client does not know, sent through its session, and the notifications they bring."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import anyio
from mcp import Client
from mcp.client import ClientExtension, NotificationBinding
from mcp.client.extension import ClaimContext, ResultClaim
from mcp.types import CallToolResult, Request, Result
from pydantic import BaseModel, ConfigDict, TypeAdapter

SUBSCRIPTION_ID_KEY = "io.modelcontextprotocol/subscriptionId"
_ANY = TypeAdapter(dict[str, Any])


class ExtensionRequest(Request[dict[str, Any], str]):
    pass


class TaskRequest(Request[dict[str, Any], str]):
    """`tasks/*`: the task id goes into the `Mcp-Name` header too."""

    name_param = "taskId"


async def request(client: Client, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """Send `method` with `params`; the result as a dict (an error raises `MCPError`). The
    caller bounds the wait (`anyio.fail_after`)."""
    kind = TaskRequest if method.startswith("tasks/") else ExtensionRequest
    return await client.session.send_request(kind(method=method, params=params), _ANY)


class Params(BaseModel):
    model_config = ConfigDict(extra="allow")


class Notes(ClientExtension):
    """Keeps the `notifications/events/*` (and `notifications/tasks`) a client receives."""

    identifier = "dev.wakecall/test-notes"
    METHODS = (
        "notifications/events/active",
        "notifications/events/event",
        "notifications/events/heartbeat",
        "notifications/events/error",
        "notifications/events/terminated",
        "notifications/tasks",
    )

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._changed = anyio.Event()

    def notifications(self) -> list[NotificationBinding[Any]]:
        return [
            NotificationBinding(method=m, params_type=Params, handler=self._keeper(m))
            for m in self.METHODS
        ]

    def _keeper(self, method: str) -> Callable[[Params], Any]:
        async def keep(params: Params) -> None:
            self.received.append((method, params.model_dump(by_alias=True)))
            self._changed.set()
            self._changed = anyio.Event()

        return keep

    def of(self, method: str) -> list[dict[str, Any]]:
        return [p for m, p in self.received if m == method]

    async def wait_for(self, predicate: Callable[[], object]) -> None:
        """Until `predicate()` holds, looked at on each notification (bounded by 10 s)."""
        with anyio.fail_after(10):
            while not predicate():
                await self._changed.wait()


class CreateTaskResult(Result):
    """The Tasks extension's `CreateTaskResult`, as a client claims it."""

    result_type: Literal["task"] = "task"
    task_id: str
    status: str
    created_at: str
    last_updated_at: str
    ttl_ms: int | None
    poll_interval_ms: int | None = None
    status_message: str | None = None


TERMINAL_TASK_STATUSES = frozenset({"completed", "failed", "cancelled"})


class TasksClient(ClientExtension):
    """A client of the Tasks extension: it declares it, and `call_tool` resolves a task answer
    by polling `tasks/get` until the task ends (calling `on_poll` before each poll)."""

    identifier = "io.modelcontextprotocol/tasks"

    def __init__(self, on_poll: Callable[[], Any] | None = None) -> None:
        self.created: list[CreateTaskResult] = []
        self.on_poll = on_poll

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=CreateTaskResult, resolve=self.resolve)]

    async def resolve(self, created: CreateTaskResult, ctx: ClaimContext) -> CallToolResult:
        self.created.append(created)
        while True:
            if self.on_poll is not None:
                await self.on_poll()
            task = await ctx.session.send_request(
                TaskRequest(method="tasks/get", params={"taskId": created.task_id}), _ANY
            )
            if task["status"] in TERMINAL_TASK_STATUSES:
                assert task["status"] == "completed", task
                return CallToolResult.model_validate(task["result"])
            await anyio.sleep(0.01)
