"""The `webhook` action: one HTTP request, its response kept as the run's output.

Requests go through the shared client of `wakecall.net`, which judges every address at
connect time and never follows redirects. A 2xx answer is a success; anything else, and any
transport failure, is an `ActionFailed` whose message names the URL and the cause.
"""

from __future__ import annotations

import codecs
import json
import logging
from collections.abc import Mapping
from typing import Any, Literal

import httpx2
from pydantic import ValidationError

from wakecall.actions.base import ActionContext, ActionFailed
from wakecall.errors import UnsafeURL, invalid_input_from
from wakecall.models import WebhookAction
from wakecall.net import OutboundPolicy, check_url

__all__ = ["WebhookExecutor", "validate_webhook"]

log = logging.getLogger(__name__)

EXCERPT_CHARS = 200


def validate_webhook(
    action: WebhookAction | Mapping[str, Any], policy: OutboundPolicy
) -> WebhookAction:
    """Refuse a webhook whose URL the policy forbids as written (a literal private address,
    `localhost`, ...). The server calls this when a task is created or patched; host names are
    judged again, after resolution, on every call. Raises `InvalidInput` (`UnsafeURL`)."""
    if not isinstance(action, WebhookAction):
        try:
            action = WebhookAction.model_validate(action)
        except ValidationError as exc:
            raise invalid_input_from(exc) from None
    check_url(action.url, policy, field="action.url")
    return action


class WebhookExecutor:
    """Runs `webhook` actions through the shared, guarded HTTP client."""

    def __init__(self, client: httpx2.AsyncClient, *, max_output_bytes: int = 64 * 1024) -> None:
        self.client = client
        self.max_output_bytes = max_output_bytes

    async def execute(self, ctx: ActionContext) -> Any:
        try:
            action = WebhookAction.model_validate(ctx.task.action)
        except ValidationError as exc:
            message = f"the task's webhook action is invalid: {invalid_input_from(exc)}"
            raise ActionFailed(message) from None
        url = action.url
        headers = {
            **action.headers,
            "x-wakecall-task-id": ctx.task.id,
            "x-wakecall-run-id": ctx.run.id,
            "x-wakecall-attempt": str(ctx.attempt),
            **ctx.trace_headers,
        }
        timeout = (
            httpx2.Timeout(action.timeout)
            if action.timeout is not None
            else httpx2.USE_CLIENT_DEFAULT
        )
        try:
            request = self.client.build_request(
                action.method,
                url,
                headers=headers,
                # No body of its own: the run's input (an event's body, an upstream run).
                json=action.body if action.body is not None else ctx.run.input,
                timeout=timeout,
            )
            response = await self.client.send(request, stream=True)
            try:
                raw, truncated = await self._read_capped(response)
            finally:
                await response.aclose()
        except UnsafeURL as exc:
            raise ActionFailed(f"refused to call {url}: {exc}") from None
        except httpx2.ConnectTimeout:
            seconds = self._seconds(action, "connect")
            raise ActionFailed(f"could not connect to {url} within {seconds}") from None
        except httpx2.TimeoutException:
            seconds = self._seconds(action, "read")
            raise ActionFailed(
                f"{url} did not answer within {seconds} (the webhook's per-attempt timeout)"
            ) from None
        except httpx2.ConnectError as exc:
            raise ActionFailed(f"could not connect to {url}: {_describe(exc)}") from None
        except (httpx2.RequestError, httpx2.InvalidURL) as exc:
            raise ActionFailed(f"calling {url} failed: {_describe(exc)}") from None

        status = response.status_code
        output = {
            "status": status,
            "body": _decode_body(response, raw, truncated),
            "truncated": truncated,
        }
        log.debug(
            "webhook %s %s answered %d", action.method, url, status, extra={"action": "webhook"}
        )
        if 200 <= status < 300:
            return output
        if 300 <= status < 400:
            target = _redirect_target(response)
            raise ActionFailed(
                f"HTTP {status} from {url}: redirects are not followed (it pointed to "
                f"{target}); put the final URL in the task's action",
                output=output,
            )
        excerpt = _excerpt(output["body"])
        raise ActionFailed(
            f"HTTP {status} from {url}" + (f": {excerpt}" if excerpt else ""), output=output
        )

    async def _read_capped(self, response: httpx2.Response) -> tuple[bytes, bool]:
        """At most `max_output_bytes` of the (decoded) body, and whether more was sent."""
        limit = self.max_output_bytes
        buffer = bytearray()
        async for chunk in response.aiter_bytes():
            buffer += chunk
            if len(buffer) > limit:
                return bytes(buffer[:limit]), True
        return bytes(buffer), False

    def _seconds(self, action: WebhookAction, phase: Literal["connect", "read"]) -> str:
        if action.timeout is not None:
            return f"{action.timeout:g}s"
        configured = getattr(self.client.timeout, phase)
        return f"{configured:g}s" if configured is not None else "the time allowed"


def _redirect_target(response: httpx2.Response) -> str:
    location = response.headers.get("location")
    if not location:
        return "no Location header"
    try:
        return str(response.url.join(location))
    except httpx2.InvalidURL:
        return repr(location)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _decode_body(response: httpx2.Response, raw: bytes, truncated: bool) -> Any:
    """The body as JSON when it says it is JSON and is whole, else as text."""
    if raw and not truncated and _is_json(response.headers.get("content-type", "")):
        try:
            return json.loads(raw)
        except ValueError:
            pass
    encoding = response.charset_encoding or "utf-8"
    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    except LookupError:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    # A truncated body may end inside a character: leave that partial character out.
    return decoder.decode(raw, final=not truncated)


def _excerpt(body: Any) -> str:
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def _describe(exc: Exception) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__
