"""The MCP Tasks extension (`io.modelcontextprotocol/tasks`, 2026-07-28) as an SDK
`Extension`: `tasks/get`, `tasks/update` and `tasks/cancel`. For a request whose client declares
the extension, `run_now` answers with a task handle that follows the run (`ToolTasks.answer`,
from the server's middleware: on the handshake generation's wire the SDK would hold a tool's
result to `CallToolResult`'s shape). What answers them (`tool_tasks.ToolTasks`) is made once the
runtime has started; this module stays light, as the server is made before wakecall loads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from mcp.server.context import ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp_types import RequestParams
from pydantic import Field

__all__ = ["TASKS_EXTENSION", "TaskIdParams", "TasksExtension", "UpdateTaskParams"]

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"

#: The tools whose answer may be a task: their result is a run, which takes time.
TASK_TOOLS = frozenset({"run_now"})


class TaskIdParams(RequestParams):
    task_id: str


class UpdateTaskParams(TaskIdParams):
    input_responses: dict[str, Any] = Field(default_factory=dict)


Ctx = ServerRequestContext[Any, Any]


class TaskAnswers(Protocol):
    """What answers the requests (`tool_tasks.ToolTasks`)."""

    async def get(self, ctx: Ctx, params: TaskIdParams) -> dict[str, Any]: ...
    async def update(self, ctx: Ctx, params: UpdateTaskParams) -> dict[str, Any]: ...
    async def cancel(self, ctx: Ctx, params: TaskIdParams) -> dict[str, Any]: ...


class TasksExtension(Extension):
    """`answers` gives what answers the requests, once the runtime has started."""

    identifier = TASKS_EXTENSION

    def __init__(self, answers: Callable[[], TaskAnswers]) -> None:
        self._answers = answers

    def methods(self) -> Sequence[MethodBinding]:
        return [
            MethodBinding("tasks/get", TaskIdParams, self.get),
            MethodBinding("tasks/update", UpdateTaskParams, self.update),
            MethodBinding("tasks/cancel", TaskIdParams, self.cancel),
        ]

    async def get(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> Any:
        return await self._answers().get(ctx, params)

    async def update(self, ctx: ServerRequestContext[Any, Any], params: UpdateTaskParams) -> Any:
        return await self._answers().update(ctx, params)

    async def cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> Any:
        return await self._answers().cancel(ctx, params)
