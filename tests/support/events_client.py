"""A client's side of the MCP Events and Tasks extensions for the tests: requests the SDK's
client does not know, sent through its session, and the notifications they bring."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from mcp import Client
from mcp.client import ClientExtension, NotificationBinding
from mcp.types import Request
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
