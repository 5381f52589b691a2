"""The `wakeup` action: nothing outside is called; the run's event wakes the agent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wakecall.actions.base import ActionContext

if TYPE_CHECKING:
    from wakecall.models import Task

__all__ = ["WakeupExecutor"]


class WakeupExecutor:
    """An instant executor (`InstantExecutor`): its runs end as they are fired, and their
    `wakeup.fired` event is written with the fire."""

    def instant_output(self, task: Task) -> Any:
        action = task.action
        return {"reason": action.get("reason", ""), "context": action.get("context")}

    async def execute(self, ctx: ActionContext) -> Any:
        return self.instant_output(ctx.task)
