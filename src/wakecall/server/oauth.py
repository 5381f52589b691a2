"""Authentication the way MCP hosts expect it (MCP's authorization spec, as a resource server
only): bearer tokens are static ones (`--tokens-file`) or, when the operator names an OAuth
issuer (`--oauth-issuer`), JWT access tokens from it, checked with the keys of its JWKS, for
this server as audience (its resource URL), the owner read from a configured claim.

A request without a valid token gets 401 with `WWW-Authenticate: Bearer ...,
resource_metadata="<server>/.well-known/oauth-protected-resource/mcp"` (RFC 9728), and that
document (served at that path and at `/.well-known/oauth-protected-resource`) names the
resource and, with an issuer, its authorization server: a host then runs OAuth against the
issuer instead of reporting a failed connection. wakecall issues no tokens itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio
import httpx2
import jwt
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from pydantic import AnyHttpUrl
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wakecall.errors import InvalidInput
from wakecall.server.auth import StaticTokenVerifier

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from wakecall.settings import Settings

__all__ = [
    "METADATA_PATH",
    "JwtVerifier",
    "TokenVerifiers",
    "add_resource_metadata",
    "auth_kwargs",
    "resource_url",
]

log = logging.getLogger(__name__)

METADATA_PATH = "/.well-known/oauth-protected-resource"
MCP_PATH = "/mcp"
#: Unknown key ids make the JWKS be fetched again, at most this often.
JWKS_REFETCH_S = 30.0
FETCH_TIMEOUT_S = 10.0
_METADATA_SUFFIXES = (
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
)
#: Signature algorithms accepted (never "none", never HMAC with a public key).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")


def resource_url(settings: Settings) -> str | None:
    """This server's resource URL (the JWT audience): `--public-url` + /mcp, or its bind
    address and port when the port is fixed; None when neither is known."""
    if settings.public_url:
        return settings.public_url.rstrip("/") + MCP_PATH
    if settings.port:
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        return f"http://{host}:{settings.port}{MCP_PATH}"
    return None


class JwtVerifier:
    """The SDK's `TokenVerifier` for JWT access tokens of one issuer."""

    def __init__(
        self, issuer: str, audience: str, *, owner_claim: str = "sub", jwks_url: str | None = None
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.owner_claim = owner_claim
        self.jwks_url = jwks_url
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = -JWKS_REFETCH_S
        self._lock = anyio.Lock()

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        key = await self._key(header.get("kid"))
        if key is None or header.get("alg") not in ALGORITHMS:
            return None
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[header["alg"]],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud"]},
                leeway=30,
            )
        except jwt.PyJWTError as exc:
            log.info("refused a JWT access token: %s", exc)
            return None
        owner = claims.get(self.owner_claim)
        if not isinstance(owner, str) or not owner:
            log.info("refused a JWT access token: no %r claim to name its owner", self.owner_claim)
            return None
        scopes = str(claims.get("scope") or "").split()
        return AccessToken(
            token=token,
            client_id=owner,
            scopes=scopes or ["wakecall"],
            expires_at=int(claims["exp"]),
            resource=self.audience,
        )

    async def _key(self, kid: Any) -> jwt.PyJWK | None:
        if isinstance(kid, str) and kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            if time.monotonic() - self._fetched_at >= JWKS_REFETCH_S:
                self._fetched_at = time.monotonic()
                try:
                    self._keys = await self._fetch_keys()
                except (httpx2.HTTPError, ValueError, KeyError, jwt.PyJWTError) as exc:
                    log.warning("cannot read the keys of OAuth issuer %s: %s", self.issuer, exc)
        if isinstance(kid, str):
            return self._keys.get(kid)
        return next(iter(self._keys.values())) if len(self._keys) == 1 else None

    async def _fetch_keys(self) -> dict[str, jwt.PyJWK]:
        async with httpx2.AsyncClient(timeout=FETCH_TIMEOUT_S, follow_redirects=False) as client:
            url = self.jwks_url or await self._discover_jwks(client)
            answer = await client.get(url)
            answer.raise_for_status()
            found = jwt.PyJWKSet.from_dict(answer.json())
        keys = {k.key_id or "": k for k in found.keys}
        log.info("read %d keys of OAuth issuer %s", len(keys), self.issuer)
        return keys

    async def _discover_jwks(self, client: httpx2.AsyncClient) -> str:
        base = self.issuer.rstrip("/")
        for suffix in (
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
        ):
            answer = await client.get(base + suffix)
            if answer.status_code == 200:
                return str(answer.json()["jwks_uri"])
        raise ValueError(f"{self.issuer} publishes no authorization server metadata with jwks_uri")


class TokenVerifiers:
    """Static tokens first, then the issuer's JWTs."""

    def __init__(self, *verifiers: StaticTokenVerifier | JwtVerifier) -> None:
        self.verifiers = verifiers

    async def verify_token(self, token: str) -> AccessToken | None:
        for verifier in self.verifiers:
            found = await verifier.verify_token(token)
            if found is not None:
                return found
        return None


def auth_kwargs(settings: Settings, token_owners: Mapping[str, str] | None) -> dict[str, Any]:
    """`MCPServer` arguments for bearer authentication: none when there are neither static
    tokens nor an OAuth issuer."""
    if not token_owners and not settings.oauth_issuer:
        return {}
    verifiers: list[StaticTokenVerifier | JwtVerifier] = []
    if token_owners:
        verifiers.append(StaticTokenVerifier(token_owners))
    if settings.oauth_issuer:
        audience = resource_url(settings)
        if audience is None:
            raise InvalidInput(
                "with --oauth-issuer, tokens are checked for this server's URL as audience: "
                "give --public-url (or a fixed --port)",
                example="--public-url https://wakecall.example.com",
            )
        verifiers.append(
            JwtVerifier(
                settings.oauth_issuer,
                audience,
                owner_claim=settings.oauth_owner_claim,
                jwks_url=settings.oauth_jwks_url,
            )
        )
    return {
        "token_verifier": TokenVerifiers(*verifiers),
        "auth": AuthSettings(
            issuer_url=AnyHttpUrl(settings.oauth_issuer or "https://wakecall.invalid"),
            resource_server_url=None,
        ),
    }


def _base_of(request_scope: Scope, settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    headers = dict(request_scope.get("headers") or [])
    host = headers.get(b"host", b"127.0.0.1").decode("latin-1")
    return f"{request_scope.get('scheme', 'http')}://{host}"


class _ResourceMetadataHeader:
    """Adds `resource_metadata` to the `WWW-Authenticate` header of a 401 from /mcp."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(MCP_PATH):
            await self.app(scope, receive, send)
            return
        metadata = _base_of(scope, self.settings) + METADATA_PATH + MCP_PATH

        async def send_with_metadata(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() != b"www-authenticate"
                ]
                value = (
                    'Bearer error="invalid_token", error_description="Authentication required", '
                    f'resource_metadata="{metadata}"'
                )
                headers.append((b"www-authenticate", value.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_metadata)


def add_resource_metadata(app: Starlette, settings: Settings) -> None:
    """Serve the RFC 9728 document and name it in 401 answers (when tokens are needed)."""

    async def metadata(request: Request) -> JSONResponse:
        base = _base_of(request.scope, settings)
        document: dict[str, Any] = {
            "resource": base + MCP_PATH,
            "bearer_methods_supported": ["header"],
            "resource_name": "wakecall",
        }
        if settings.oauth_issuer:
            document["authorization_servers"] = [settings.oauth_issuer]
        return JSONResponse(document, headers={"access-control-allow-origin": "*"})

    for path in (METADATA_PATH, METADATA_PATH + MCP_PATH):
        app.router.routes.append(Route(path, metadata, methods=["GET"]))
    app.add_middleware(_ResourceMetadataHeader, settings=settings)
