"""The `noop` action: succeeds at once with no output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wakecall.actions.base import ActionContext

if TYPE_CHECKING:
    from wakecall.models import Task

__all__ = ["NoopExecutor"]


class NoopExecutor:
    """An instant executor (`InstantExecutor`): its runs end as they are fired."""

    def instant_output(self, task: Task) -> Any:
        return None

    async def execute(self, ctx: ActionContext) -> Any:
        return self.instant_output(ctx.task)
