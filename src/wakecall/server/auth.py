"""Who is calling: a bearer token mapped to an owner over HTTP, the local owner over stdio."""

from __future__ import annotations

from collections.abc import Mapping

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken

__all__ = ["StaticTokenVerifier", "current_owner"]


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
