"""The one shared client for outgoing HTTP."""

from __future__ import annotations

import ssl
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import httpx2

from .guard import OutboundPolicy, Resolver
from .transport import GuardedTransport

__all__ = ["DEFAULT_TIMEOUT", "GuardedClient", "build_http_client", "user_agent"]

DEFAULT_TIMEOUT = 10.0


class GuardedClient(httpx2.AsyncClient):
    """wakecall's shared client: an `httpx2.AsyncClient` on a `GuardedTransport`, which it
    names (`guarded_transport`) for callers that keep connections of their own (the callback
    senders of `wakecall.delivery.http`)."""

    def __init__(self, transport: GuardedTransport, **options: Any) -> None:
        super().__init__(transport=transport, **options)
        self.guarded_transport = transport


def user_agent() -> str:
    try:
        return f"wakecall/{version('wakecall')}"
    except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        return "wakecall"


def build_http_client(
    policy: OutboundPolicy,
    *,
    timeout: float | httpx2.Timeout = DEFAULT_TIMEOUT,
    resolver: Resolver | None = None,
    verify: ssl.SSLContext | bool = True,
) -> GuardedClient:
    """The one shared client for outgoing HTTP: every connection is judged by `policy` at
    connect time, redirects are never followed, proxies are never read from the environment.

    `resolver` replaces DNS resolution (tests); `verify` is the TLS verification setting
    (an `ssl.SSLContext` to trust a private CA). Close it with `aclose()` (or `async with`).
    """
    return GuardedClient(
        GuardedTransport(policy, resolver=resolver, verify=verify),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": user_agent()},
    )
