"""The `noop` action: succeeds at once with no output."""

from __future__ import annotations

from typing import Any

from wakecall.actions.base import ActionContext

__all__ = ["NoopExecutor"]


class NoopExecutor:
    async def execute(self, ctx: ActionContext) -> Any:
        return None
