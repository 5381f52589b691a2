"""Who is calling: a bearer token mapped to an owner over HTTP, the local owner over stdio."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.context import ServerRequestContext

__all__ = ["StaticTokenVerifier", "authenticated_owner", "current_owner"]


class StaticTokenVerifier:
    """The SDK's `TokenVerifier` protocol over a fixed token → owner table."""

    def __init__(self, owners: Mapping[str, str]) -> None:
        self._owners = dict(owners)

    async def verify_token(self, token: str) -> AccessToken | None:
        owner = self._owners.get(token)
        if owner is None:
            return None
        return AccessToken(token=token, client_id=owner, scopes=["wakecall"])

    def __repr__(self) -> str:  # never show the tokens
        return f"StaticTokenVerifier({len(self._owners)} tokens)"


def current_owner(default: str) -> str:
    """The authenticated owner of the current request, or `default` (stdio, in-memory)."""
    token = get_access_token()
    return token.client_id if token is not None else default


def authenticated_owner(ctx: ServerRequestContext[Any, Any], default: str) -> str | None:
    """The owner of a request whose caller is known: the bearer token's over HTTP; `default`
    over stdio and in process (the process's own user started the server). None for an HTTP
    request without a token (a loopback server run without tokens)."""
    token = get_access_token()
    if token is not None:
        return token.client_id
    return default if ctx.request is None else None
