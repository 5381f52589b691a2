"""What answers the Tasks extension (see `tasks_ext`): task handles for `run_now`, whose status
follows the run, and `tasks/get`, `tasks/update`, `tasks/cancel` on them.

A handle is offered only to a client that declares the extension: in a 2026-07-28 request's
capabilities, or in the handshake's (for clients of that generation, such as the TypeScript
SDK 1.x, which send the extension's requests themselves); others get `run_now`'s usual answer.
Its id is unguessable (192 random bits) and found only by its owner.

The task's status follows the run: `working` while it is queued or running; `completed` when
it has ended with a result, which is what `run_now` would have answered had it waited (its
run, now finished), `isError` when the run failed or timed out (the spec keeps `failed` for
JSON-RPC errors); `cancelled` for a cancelled run; `failed` when the run no longer exists (its
task was deleted and its history with it).
"""

from __future__ import annotations

import contextlib
import json
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import require_client_extension
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS

from wakecall.errors import RunNotFound
from wakecall.models import Run, RunStatus
from wakecall.models.subscriptions import ToolTask
from wakecall.server.tasks_ext import TASK_TOOLS, TASKS_EXTENSION, TaskIdParams, UpdateTaskParams
from wakecall.server.views import run_view

if TYPE_CHECKING:
    from wakecall.server.runtime import Runtime

__all__ = ["POLL_INTERVAL_MS", "TASK_TTL", "ToolTasks", "detailed_task"]

TASK_TTL = timedelta(days=1)
POLL_INTERVAL_MS = 1000

_WORKING = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
_FINE = frozenset({RunStatus.SUCCESS, RunStatus.SKIPPED})


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _base(handle: ToolTask, status: str, updated: datetime, message: str | None) -> dict[str, Any]:
    task: dict[str, Any] = {
        "taskId": handle.id,
        "status": status,
        "createdAt": _iso(handle.created_at),
        "lastUpdatedAt": _iso(updated),
        "ttlMs": int(TASK_TTL.total_seconds() * 1000),
        "pollIntervalMs": POLL_INTERVAL_MS,
    }
    if message:
        task["statusMessage"] = message
    return task


def detailed_task(handle: ToolTask, run: Run | None) -> dict[str, Any]:
    """The task as `tasks/get` and `notifications/tasks` show it (a `DetailedTask`)."""
    if run is None:
        task = _base(handle, "failed", handle.created_at, "the run no longer exists")
        task["error"] = {
            "code": INTERNAL_ERROR,
            "message": f"run {handle.run_id} no longer exists (its task was deleted)",
        }
        return task
    updated = run.finished_at or run.started_at or run.created_at
    if run.status in _WORKING:
        if run.status == RunStatus.QUEUED:
            message = "queued"
        else:
            message = f"running attempt {run.attempt} of {run.max_attempts}"
        return _base(handle, "working", updated, message)
    if run.status == RunStatus.CANCELLED:
        return _base(handle, "cancelled", updated, run.error_message or "cancelled")
    view = run_view(run).model_dump(mode="json")
    task = _base(handle, "completed", updated, f"run {run.status}")
    task["result"] = {
        "content": [{"type": "text", "text": json.dumps(view)}],
        "structuredContent": view,
        "isError": run.status not in _FINE,
    }
    return task


class ToolTasks:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    @staticmethod
    def declared(ctx: ServerRequestContext[Any, Any]) -> bool:
        """Whether the client of this request declared the extension: in the request's
        capabilities (2026-07-28), or in its handshake's."""
        capabilities = ctx.session.client_capabilities
        extensions = capabilities.extensions if capabilities is not None else None
        return bool(extensions) and TASKS_EXTENSION in extensions  # type: ignore[operator]

    async def answer(self, ctx: ServerRequestContext[Any, Any], result: Any) -> Any:
        """The answer to a `tools/call` (`result`, as the server would send it): for a task
        tool called by a client that declared the extension, a task that follows the run."""
        params = ctx.params or {}
        if params.get("name") not in TASK_TOOLS or not self.declared(ctx):
            return result
        if not isinstance(result, dict) or result.get("isError"):
            return result
        content = result.get("structuredContent")
        run_id = content.get("id") if isinstance(content, dict) else None
        if not isinstance(run_id, str):
            return result
        owner, now = self.rt.owner(), self.rt.engine.clock.now()
        handle = ToolTask(
            id="wtk_" + secrets.token_urlsafe(24),
            owner=owner,
            run_id=run_id,
            created_at=now,
            expires_at=now + TASK_TTL,
        )
        await self.rt.engine.store.create_tool_task(handle)  # durable before it is answered
        task = detailed_task(handle, await self._run(owner, run_id))
        task.pop("result", None)
        task.pop("error", None)
        answer: dict[str, Any] = {"resultType": "task", **task}
        if result.get("_meta") is not None:
            answer["_meta"] = result["_meta"]
        return answer

    async def _run(self, owner: str, run_id: str) -> Run | None:
        try:
            return await self.rt.tasks.get_run(owner, run_id)
        except RunNotFound:
            return None

    async def _handle(self, ctx: ServerRequestContext[Any, Any], task_id: str) -> ToolTask:
        require_client_extension(ctx, TASKS_EXTENSION)
        owner, now = self.rt.owner(), self.rt.engine.clock.now()
        handle = await self.rt.engine.store.get_tool_task(owner, task_id, now)
        if handle is None:
            raise MCPError(
                INVALID_PARAMS,
                f"Failed to retrieve task: no task {task_id!r} (unknown, another's, or past its "
                f"time to live of {int(TASK_TTL.total_seconds() // 3600)} h); list_runs shows "
                "the runs themselves",
            )
        return handle

    async def get(
        self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams
    ) -> dict[str, Any]:
        handle = await self._handle(ctx, params.task_id)
        run = await self._run(handle.owner, handle.run_id)
        return {"resultType": "complete", **detailed_task(handle, run)}

    async def update(
        self, ctx: ServerRequestContext[Any, Any], params: UpdateTaskParams
    ) -> dict[str, Any]:
        # wakecall's tasks never wait for input: every response is for no outstanding key.
        await self._handle(ctx, params.task_id)
        return {"resultType": "complete"}

    async def cancel(
        self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams
    ) -> dict[str, Any]:
        handle = await self._handle(ctx, params.task_id)
        with contextlib.suppress(RunNotFound):  # nothing left to cancel
            await self.rt.tasks.cancel_run(handle.owner, handle.run_id)
        return {"resultType": "complete"}
