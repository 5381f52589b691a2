"""Read-only resources: the owner's tasks, one task, a task's runs, one run (JSON)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from wakecall.errors import NotFound
from wakecall.server.views import TaskPage, run_view, task_view

if TYPE_CHECKING:
    from wakecall.server.runtime import Runtime

__all__ = ["register_resources"]

JSON = "application/json"


def register_resources(mcp: MCPServer[Any], rt: Runtime) -> None:
    service = rt.tasks

    @mcp.resource("wakecall://tasks", name="tasks", title="Your tasks", mime_type=JSON)
    async def tasks() -> str:
        """Your tasks (the first 100), each with its next fires."""
        owner = rt.owner()
        found = await service.list_tasks(owner, limit=101)
        page = TaskPage(
            tasks=[task_view(t) for t in found[:100]],
            next_cursor=found[99].id if len(found) > 100 else None,
        )
        return page.model_dump_json()

    @mcp.resource("wakecall://tasks/{task_id}", name="task", title="A task", mime_type=JSON)
    async def task(task_id: str) -> str:
        """One task with its next fires."""
        try:
            found = await service.get(rt.owner(), task_id)
        except NotFound as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        return task_view(found).model_dump_json()

    @mcp.resource(
        "wakecall://tasks/{task_id}/runs", name="task-runs", title="A task's runs", mime_type=JSON
    )
    async def task_runs(task_id: str) -> str:
        """The task's 50 newest runs, newest first."""
        try:
            runs = await service.list_runs(rt.owner(), task_id=task_id, limit=50)
        except NotFound as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        return json.dumps([run_view(r).model_dump(mode="json") for r in runs])

    @mcp.resource("wakecall://runs/{run_id}", name="run", title="A run", mime_type=JSON)
    async def run(run_id: str) -> str:
        """One run with its attempts."""
        owner = rt.owner()
        try:
            found = await service.get_run(owner, run_id)
            attempts = await service.list_attempts(owner, run_id)
        except NotFound as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        body = run_view(found).model_dump(mode="json")
        body["attempts"] = [
            {
                "number": a.number,
                "status": str(a.status),
                "started_at": a.started_at.isoformat(),
                "finished_at": None if a.finished_at is None else a.finished_at.isoformat(),
                "error_message": a.error_message,
            }
            for a in attempts
        ]
        return json.dumps(body)
