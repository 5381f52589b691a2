"""The `webhook` action: one HTTP request, its response kept as the run's output.

Requests go through the shared client of `wakecall.net`, which judges every address at
connect time and never follows redirects. A 2xx answer is a success; anything else, and any
transport failure, is an `ActionFailed` whose message names the URL and the cause.
"""

from __future__ import annotations

import codecs
import json
import logging
import re
from collections.abc import Mapping
from ipaddress import ip_network
from typing import Any, Literal

import httpx2
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from wakecall.actions.base import ActionContext, ActionFailed
from wakecall.errors import UnsafeURL, invalid_input_from
from wakecall.net import MAX_URL_LENGTH, OutboundPolicy, check_url

__all__ = ["WebhookAction", "WebhookExecutor", "validate_webhook"]

log = logging.getLogger(__name__)

MAX_HEADERS = 50
MAX_HEADER_VALUE = 8192
MAX_BODY_BYTES = 64 * 1024
MAX_TIMEOUT_S = 3600.0
EXCERPT_CHARS = 200

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")
#: Headers wakecall sets itself or that would break the request's framing.
_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_OWN_PREFIX = "x-wakecall-"

# Syntax only: literal addresses are judged against the operator's policy by
# `validate_webhook` and, whatever the URL says, at connect time.
_SYNTAX_ONLY = OutboundPolicy(
    allow_loopback=True, allow_cidrs=(ip_network("0.0.0.0/0"), ip_network("::/0"))
)

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


class WebhookAction(BaseModel):
    """Calls `url` with `method`, `headers` and, when set, `body` sent as JSON (without a body,
    the run's input is sent, when it has one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["webhook"] = "webhook"
    url: str = Field(max_length=MAX_URL_LENGTH, description="http:// or https://")
    method: Method = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = Field(None, description="any JSON, sent as the request body")
    timeout: float | None = Field(
        None, gt=0, le=MAX_TIMEOUT_S, description="seconds the HTTP request may take per attempt"
    )

    @field_validator("url")
    @classmethod
    def _valid_url(cls, url: str) -> str:
        check_url(url, _SYNTAX_ONLY)
        return url

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, method: Any) -> Any:
        return method.upper() if isinstance(method, str) else method

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        if len(headers) > MAX_HEADERS:
            raise ValueError(f"{len(headers)} headers; at most {MAX_HEADERS}")
        for name, value in headers.items():
            if not _TOKEN.match(name):
                raise ValueError(f"header name {name!r} is not a valid HTTP header name")
            lowered = name.lower()
            if lowered in _RESERVED_HEADERS or lowered.startswith(_OWN_PREFIX):
                raise ValueError(f"header {name} is set by wakecall and cannot be given")
            if len(value) > MAX_HEADER_VALUE:
                raise ValueError(f"header {name} is {len(value)} characters; at most 8192")
            if any(c in value for c in "\r\n\0"):
                raise ValueError(f"header {name} contains a line break or NUL")
        return headers

    @field_validator("body")
    @classmethod
    def _json_body(cls, body: Any) -> Any:
        if body is None:
            return body
        try:
            size = len(json.dumps(body, allow_nan=False).encode())
        except (TypeError, ValueError) as exc:
            raise ValueError(f"body must be JSON ({exc})") from None
        if size > MAX_BODY_BYTES:
            raise ValueError(f"body is {size} bytes of JSON; at most {MAX_BODY_BYTES}")
        return body


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
