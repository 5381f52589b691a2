"""Authentication as MCP hosts expect it, against a real `wakecall serve --http`: a 401 names
the protected resource metadata (RFC 9728) that wakecall serves, and with an OAuth issuer named
by the operator, JWT access tokens of that issuer (a local one here, with a generated key and a
JWKS endpoint on loopback) are accepted for this server's resource URL only."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from support.protocol import INITIALIZE

pytestmark = pytest.mark.slow


@dataclass
class Issuer:
    url: str
    key: rsa.RSAPrivateKey
    kid: str = "k1"

    def token(
        self, audience: str, *, sub: str = "carol", expires_in: int = 300, **extra: Any
    ) -> str:
        now = int(time.time())
        claims = {"iss": self.url, "aud": audience, "sub": sub, "iat": now, "exp": now + expires_in}
        return jwt.encode(
            {**claims, **extra}, self.key, algorithm="RS256", headers={"kid": self.kid}
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def local_issuer() -> AsyncIterator[Issuer]:
    """An authorization server's metadata and JWKS on loopback (it issues tokens in-process)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    issuer = Issuer(f"http://127.0.0.1:{sock.getsockname()[1]}", key)

    async def metadata(request: Request) -> JSONResponse:
        return JSONResponse({"issuer": issuer.url, "jwks_uri": issuer.url + "/jwks"})

    async def jwks(request: Request) -> JSONResponse:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        return JSONResponse({"keys": [{**public, "kid": issuer.kid, "use": "sig", "alg": "RS256"}]})

    app = Starlette(
        routes=[
            Route("/.well-known/oauth-authorization-server", metadata),
            Route("/jwks", jwks),
        ]
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        with anyio.fail_after(5):
            while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
                await anyio.sleep(0.01)
        yield issuer
        server.should_exit = True
    sock.close()


async def initialize(url: str, token: str | None = None) -> httpx2.Response:
    headers = {"accept": "application/json, text/event-stream"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    async with httpx2.AsyncClient(timeout=10) as http:
        return await http.post(url, json=INITIALIZE, headers=headers)


async def test_a_401_names_the_resource_metadata_and_its_issuer(wakecall: Any) -> None:
    port = free_port()
    async with local_issuer() as issuer:
        flags = ("--port", str(port), "--oauth-issuer", issuer.url)
        async with wakecall.http_server(*flags) as server:
            refused = await initialize(server.url)
            assert refused.status_code == 401
            challenge = refused.headers["www-authenticate"]
            assert challenge.startswith("Bearer ")
            metadata_url = f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp"
            assert f'resource_metadata="{metadata_url}"' in challenge
            async with httpx2.AsyncClient(timeout=10) as http:
                for url in (metadata_url, metadata_url.removesuffix("/mcp")):
                    document = (await http.get(url)).json()
                    assert document["resource"] == f"http://127.0.0.1:{port}/mcp"
                    assert document["authorization_servers"] == [issuer.url]
                    assert document["bearer_methods_supported"] == ["header"]


async def test_jwt_access_tokens_of_the_issuer_are_accepted_for_this_server_only(
    wakecall: Any,
) -> None:
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    async with local_issuer() as issuer:
        flags = ("--port", str(port), "--oauth-issuer", issuer.url)
        async with wakecall.http_server(*flags) as server:
            token = issuer.token(resource, sub="carol")
            async with wakecall.client(wakecall.http_transport(server.url, token)) as carol:
                made = await wakecall.call(
                    carol, "create_task", {"name": "carol's", "schedule": "on demand"}
                )
                listed = await wakecall.call(carol, "list_tasks", {})
                assert [t["id"] for t in listed["tasks"]] == [made["id"]]
            # Static tokens still work beside the issuer; their owners see only their own.
            async with wakecall.client(wakecall.http_transport(server.url, "tok-bob")) as bob:
                assert (await wakecall.call(bob, "list_tasks", {}))["tasks"] == []
            other_key = Issuer(
                issuer.url, rsa.generate_private_key(public_exponent=65537, key_size=2048)
            )
            for bad in (
                issuer.token("https://another.example/mcp"),  # another resource
                issuer.token(resource, expires_in=-120),  # expired
                other_key.token(resource),  # not signed by the issuer's key
                Issuer("http://127.0.0.1:1", issuer.key).token(resource),  # another issuer
                issuer.token(resource, sub=""),  # no owner
            ):
                assert (await initialize(server.url, bad)).status_code == 401


async def test_static_tokens_alone_still_get_a_401_with_resource_metadata(wakecall: Any) -> None:
    async with wakecall.http_server() as server:
        refused = await initialize(server.url)
        assert refused.status_code == 401
        assert "resource_metadata=" in refused.headers["www-authenticate"]
        metadata_url = refused.headers["www-authenticate"].split('resource_metadata="')[1][:-1]
        async with httpx2.AsyncClient(timeout=10) as http:
            document = (await http.get(metadata_url)).json()
        assert document["resource"] == server.url
        assert "authorization_servers" not in document  # a static token goes in a header
        assert (await initialize(server.url, "tok-alice")).status_code == 200
