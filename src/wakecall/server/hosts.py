"""The Host and Origin check of every HTTP route (`/mcp`, `/metrics`, `/triggers/...`, and any
added later): a request whose `Host` is not one this server answers for is refused with 421
(DNS rebinding: a browser led to a hostile name that resolves to 127.0.0.1 sends that name),
and one whose `Origin` (browsers send it) is not allowed with 403."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from wakecall.settings import Settings

__all__ = ["HostGuard", "allowed_hosts"]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def allowed_hosts(settings: Settings) -> tuple[list[str], list[str]]:
    """The `Host` values (a `:*` suffix: any port) and `Origin` values the server accepts:
    loopback, and the operator's `--allowed-hosts`."""
    hosts = [*LOOPBACK_HOSTS, *(f"{h}:*" for h in LOOPBACK_HOSTS)]
    origins = [f"http://{h}:*" for h in LOOPBACK_HOSTS]
    for host in settings.allowed_hosts:
        hosts += [host, f"{host}:*"] if ":" not in host else [host]
        origins += [f"https://{host}", f"http://{host}"]
    return hosts, origins


def _matches(value: str, patterns: Sequence[str]) -> bool:
    for pattern in patterns:
        if pattern.endswith(":*"):
            base, _, port = value.rpartition(":")
            if base == pattern[:-2] and port.isdigit():
                return True
        elif value == pattern:
            return True
    return False


class HostGuard:
    """ASGI middleware refusing requests for a `Host` or from an `Origin` not allowed."""

    def __init__(self, app: ASGIApp, hosts: Sequence[str], origins: Sequence[str]) -> None:
        self.app = app
        self.hosts = list(hosts)
        self.origins = list(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = dict(scope.get("headers") or [])
            host = headers.get(b"host", b"").decode("latin-1")
            origin = headers.get(b"origin", b"").decode("latin-1")
            refusal = None
            if not _matches(host, self.hosts):
                refusal = PlainTextResponse(f"Invalid Host header: {host!r}", status_code=421)
            elif origin and not _matches(origin, self.origins):
                refusal = PlainTextResponse(f"Invalid Origin header: {origin!r}", status_code=403)
            if refusal is not None and scope["type"] == "http":
                await refusal(scope, receive, send)
                return
            if refusal is not None:  # a websocket: close it without accepting
                await send({"type": "websocket.close", "code": 1008})
                return
        await self.app(scope, receive, send)
