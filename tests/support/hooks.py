"""A webhook receiver on loopback HTTPS for MCP Events subscriptions: it answers the
verification challenge, verifies every delivery with `standardwebhooks` (the secret chosen by
the subscription's id), and keeps each event once by its `webhook-id`."""

from __future__ import annotations

import base64
import hmac
import json
import os
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import uvicorn
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from support.tls import LoopbackTLS
from wakecall.clock import Clock

#: How far a delivery's `webhook-timestamp` may be from the receiver's time (Standard Webhooks).
TOLERANCE = timedelta(minutes=5)


def new_whsec() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


@dataclass
class HookReceiver:
    """`secrets` maps a subscription id to its secret (one secret, `secret`, until told);
    `script` gives statuses to answer event deliveries first; `echo` False fails challenges.
    `clock`: the receiver's time is the server's fake clock (which tests move hours ahead)
    rather than the real one that `Webhook.verify` reads."""

    port: int = 0
    secret: str = field(default_factory=new_whsec)
    secrets: dict[str, str] = field(default_factory=dict)
    script: list[int] = field(default_factory=list)
    echo: bool = True
    clock: Clock | None = None
    challenges: list[dict[str, str]] = field(default_factory=list)
    attempts: list[dict[str, str]] = field(default_factory=list)
    posted: list[Any] = field(default_factory=list)  # the body of each attempt, as verified
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # webhook-id -> body
    order: list[str] = field(default_factory=list)
    rejected: int = 0
    changed: anyio.Event = field(default_factory=anyio.Event)

    def url(self, path: str = "/hook") -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    async def hook(self, request: Request) -> Response:
        raw = await request.body()
        headers = dict(request.headers)
        secret = self.secrets.get(headers.get("x-mcp-subscription-id", ""), self.secret)
        try:
            body = self._verify(secret, raw, headers)
        except WebhookVerificationError:
            self.rejected += 1
            self._notify()
            return JSONResponse({"error": "bad signature"}, status_code=401)
        if isinstance(body, dict) and body.get("type") == "verification":
            self.challenges.append(headers)
            self._notify()
            echoed = body["challenge"] if self.echo else "not it"
            return JSONResponse({"challenge": echoed})
        self.attempts.append(headers)
        self.posted.append(body)
        status = self.script.pop(0) if self.script else 200
        if status == 200:
            message_id = headers["webhook-id"]
            if message_id not in self.events:
                self.order.append(message_id)
            self.events.setdefault(message_id, body)
        self._notify()
        return Response(status_code=status) if status != 200 else JSONResponse({"ok": True})

    def _verify(self, secret: str, raw: bytes, headers: Mapping[str, str]) -> Any:
        if self.clock is None:
            return Webhook(secret).verify(raw, headers)
        # The same checks against the fake clock: the timestamp within the tolerance, and one
        # of the signatures the one `standardwebhooks` makes for this message.
        try:
            stamp = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
            message_id, signatures = headers["webhook-id"], headers["webhook-signature"]
        except (KeyError, ValueError):
            raise WebhookVerificationError("missing or malformed headers") from None
        if abs(stamp - self.clock.now()) > TOLERANCE:
            raise WebhookVerificationError("timestamp outside the tolerance")
        expected = Webhook(secret).sign(message_id, stamp, raw.decode())
        if not any(hmac.compare_digest(expected, s) for s in signatures.split()):
            raise WebhookVerificationError("no matching signature")
        return json.loads(raw)

    def bodies(self) -> list[dict[str, Any]]:
        return [self.events[m] for m in self.order]

    def _notify(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    async def wait_for(self, predicate: Callable[[], object]) -> None:
        """Until `predicate()` holds (bounded by 15 s)."""
        with anyio.fail_after(15):
            while not predicate():
                await self.changed.wait()


@asynccontextmanager
async def serve_hooks(tls: LoopbackTLS) -> AsyncIterator[HookReceiver]:
    rec = HookReceiver()
    app = Starlette(routes=[Route("/hook", rec.hook, methods=["POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    rec.port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        ssl_certfile=str(tls.cert_file),
        ssl_keyfile=str(tls.key_file),
    )
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        with anyio.fail_after(5):
            while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
                await anyio.sleep(0.01)
        yield rec
        server.should_exit = True
    sock.close()


def parsed(body: Any) -> dict[str, Any]:
    return body if isinstance(body, dict) else json.loads(body)
