"""The check a task may run before each attempt's action (`condition`): an HTTP endpoint that
answers whether to proceed.

wakecall POSTs `{"task": {id, name, metadata}, "run": {id, attempt, trigger, scheduledFor,
input}}` (or GETs the URL), and proceeds on a 2xx answer unless its JSON body is
`{"proceed": false, "reason": "..."}`. Anything else (another status, no answer within the
timeout, a URL the outgoing guard refuses) fails the attempt, which is retried per the task's
retry policy: a check that cannot be made is not a "no".
"""

from __future__ import annotations

import json
from typing import Any

import httpx2

from wakecall.actions.base import ActionContext, ActionFailed
from wakecall.errors import UnsafeURL
from wakecall.models import ConditionSpec, task_summary

__all__ = ["MAX_ANSWER_BYTES", "ConditionChecker"]

#: The most of a condition's answer that is read.
MAX_ANSWER_BYTES = 64 * 1024


class ConditionChecker:
    def __init__(self, client: httpx2.AsyncClient) -> None:
        self.client = client

    async def check(self, ctx: ActionContext) -> str | None:
        """None to proceed, or the reason not to. Raises `ActionFailed` when the check
        itself fails."""
        spec = ConditionSpec.model_validate(ctx.task.condition)
        run = ctx.run
        body: dict[str, Any] = {
            "task": task_summary(ctx.task),
            "run": {
                "id": run.id,
                "attempt": ctx.attempt,
                "trigger": str(run.trigger),
                "scheduledFor": None
                if run.scheduled_for is None
                else run.scheduled_for.isoformat().replace("+00:00", "Z"),
                "input": run.input,
            },
        }
        timeout = spec.timeout.total_seconds()
        try:
            if spec.method == "GET":
                request = self.client.build_request(
                    "GET", spec.url, headers=ctx.trace_headers, timeout=timeout
                )
            else:
                request = self.client.build_request(
                    "POST", spec.url, headers=ctx.trace_headers, json=body, timeout=timeout
                )
            response = await self.client.send(request, stream=True)
            try:
                raw = b""
                async for chunk in response.aiter_bytes():
                    raw += chunk
                    if len(raw) > MAX_ANSWER_BYTES:
                        break
            finally:
                await response.aclose()
        except UnsafeURL as exc:
            raise ActionFailed(f"condition check refused: {exc}") from None
        except httpx2.HTTPError as exc:
            raise ActionFailed(
                f"condition check failed: {type(exc).__name__} calling {spec.url}: "
                f"{exc or 'no detail'}"
            ) from None
        status = response.status_code
        if not 200 <= status < 300:
            raise ActionFailed(f"condition check failed: HTTP {status} from {spec.url}")
        if not raw.strip():
            return None
        try:
            answer = json.loads(raw[:MAX_ANSWER_BYTES])
        except ValueError:
            return None  # a 2xx without JSON: proceed
        if isinstance(answer, dict) and answer.get("proceed") is False:
            reason = answer.get("reason")
            text = str(reason)[:500] if reason else "no reason given"
            return f"the condition at {spec.url} said not to proceed: {text}"
        return None
