"""The `wakeup` action: nothing outside is called; the run's event wakes the agent."""

from __future__ import annotations

from typing import Any

from wakecall.actions.base import ActionContext

__all__ = ["WakeupExecutor"]


class WakeupExecutor:
    async def execute(self, ctx: ActionContext) -> Any:
        action = ctx.task.action
        return {"reason": action.get("reason", ""), "context": action.get("context")}
