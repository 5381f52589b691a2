"""The server middleware that checks every tool call's arguments before the SDK sees them
(`refusals.ArgumentCheck`): a refused call is answered with a tool error in the house style,
and the tool never runs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext
from mcp.types import CallToolResult, TextContent

from wakecall.errors import InvalidInput
from wakecall.server.tools.refusals import ArgumentCheck

__all__ = ["argument_guard"]

log = logging.getLogger(__name__)


def argument_guard(checks: Mapping[str, ArgumentCheck]) -> ServerMiddleware[Any]:
    """A middleware answering `tools/call` requests whose arguments fail their tool's check;
    the others go on with their arguments as checked (nulls of optional ones left out)."""

    async def guard(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call" or not isinstance(ctx.params, Mapping):
            return await call_next(ctx)
        check = checks.get(ctx.params.get("name"))  # type: ignore[arg-type]
        if check is None:  # not one of ours: the SDK answers
            return await call_next(ctx)
        try:
            arguments = check(ctx.params.get("arguments"))
        except InvalidInput as exc:
            log.info("tool %s refused its arguments", check.tool)
            return CallToolResult(content=[TextContent(type="text", text=str(exc))], is_error=True)
        return await call_next(replace(ctx, params={**ctx.params, "arguments": arguments}))

    return guard
