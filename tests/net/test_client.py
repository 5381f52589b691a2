"""The shared client enforces the guard when it connects: names are resolved by wakecall,
every address is judged, and TLS still verifies the original host name."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable

import anyio
import httpx2
import pytest

from wakecall.errors import UnsafeURL
from wakecall.net import (
    IPAddress,
    OutboundPolicy,
    Resolver,
    build_http_client,
    check_host,
    check_url,
)

from .conftest import Certificates, LoopbackServer

LOOPBACK = OutboundPolicy(allow_loopback=True)


def resolving_to(*answers: list[str]) -> tuple[Resolver, list[str]]:
    """A resolver that gives each answer in turn (the last one from then on), and the names
    it was asked for."""
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[IPAddress]:
        asked.append(host)
        answer = answers[min(len(asked) - 1, len(answers) - 1)]
        return [ipaddress.ip_address(a) for a in answer]

    return resolve, asked


async def test_a_name_that_resolves_to_loopback_is_refused_at_connect_time(
    server: LoopbackServer,
) -> None:
    async with build_http_client(OutboundPolicy()) as client:
        with anyio.fail_after(5), pytest.raises(UnsafeURL, match=r"localhost at .*loopback"):
            await client.get(f"http://localhost:{server.port}/")
    assert server.requests == []


async def test_the_loopback_allowance_lets_the_client_reach_localhost(
    server: LoopbackServer,
) -> None:
    async with build_http_client(LOOPBACK) as client:
        with anyio.fail_after(5):
            response = await client.get(f"http://localhost:{server.port}/hello")
    assert response.status_code == 200
    assert response.text == "served"
    (seen,) = server.requests
    assert seen.target == "/hello"
    assert seen.headers["host"] == f"localhost:{server.port}"
    assert seen.headers["user-agent"].startswith("wakecall")


@pytest.mark.parametrize("host", ["127.0.0.1", "2130706433", "[::ffff:127.0.0.1]"])
async def test_urls_naming_a_blocked_address_are_refused_at_connect_time_too(
    server: LoopbackServer, host: str
) -> None:
    async with build_http_client(OutboundPolicy()) as client:
        with anyio.fail_after(5), pytest.raises(UnsafeURL, match=r"127\.0\.0\.1"):
            await client.get(f"http://{host}:{server.port}/")
    assert server.requests == []


async def test_a_name_rebound_to_loopback_after_it_was_checked_is_refused_at_connect_time(
    server: LoopbackServer,
) -> None:
    resolve, asked = resolving_to(["93.184.216.34"], ["127.0.0.1"])
    policy = OutboundPolicy()
    url = f"http://rebind.example:{server.port}/"
    check_url(url, policy)
    assert await check_host("rebind.example", server.port, policy, resolver=resolve)
    async with build_http_client(policy, resolver=resolve) as client:
        with (
            anyio.fail_after(5),
            pytest.raises(UnsafeURL, match=r"rebind\.example at 127\.0\.0\.1"),
        ):
            await client.get(url)
    assert asked == ["rebind.example", "rebind.example"]
    assert server.requests == []


async def test_a_name_is_refused_when_any_one_of_its_addresses_is_blocked(
    server: LoopbackServer,
) -> None:
    resolve, _ = resolving_to(["93.184.216.34", "127.0.0.1"])
    async with build_http_client(OutboundPolicy(), resolver=resolve) as client:
        with anyio.fail_after(5), pytest.raises(UnsafeURL, match=r"127\.0\.0\.1"):
            await client.get(f"http://mixed.example:{server.port}/")
    assert server.requests == []


async def test_the_client_connects_to_the_address_it_vetted_and_keeps_the_host_name(
    server: LoopbackServer,
) -> None:
    resolve, asked = resolving_to(["::1", "127.0.0.1"])
    async with build_http_client(LOOPBACK, resolver=resolve) as client:
        with anyio.fail_after(5):
            response = await client.get(f"http://hooks.example:{server.port}/x")
    assert response.status_code == 200
    assert asked == ["hooks.example"]
    assert server.requests[0].headers["host"] == f"hooks.example:{server.port}"


async def test_redirects_are_returned_not_followed(server: LoopbackServer) -> None:
    async with build_http_client(LOOPBACK) as client:
        with anyio.fail_after(5):
            response = await client.get(f"http://127.0.0.1:{server.port}/redirect")
    assert response.status_code == 302
    assert response.headers["location"] == "/elsewhere"
    assert [r.target for r in server.requests] == ["/redirect"]


async def test_proxy_settings_in_the_environment_are_ignored(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://192.0.2.1:3128")
    async with build_http_client(LOOPBACK) as client:
        with anyio.fail_after(5):
            response = await client.get(f"http://127.0.0.1:{server.port}/")
    assert response.status_code == 200


async def test_an_unresolvable_name_is_a_connect_error() -> None:
    async def no_such_host(host: str, port: int) -> list[IPAddress]:
        raise OSError(f"no such host {host}")

    async with build_http_client(OutboundPolicy(), resolver=no_such_host) as client:
        with anyio.fail_after(5), pytest.raises(httpx2.ConnectError, match="could not resolve"):
            await client.get("http://nowhere.example/")


async def test_tls_verifies_the_certificate_and_sends_sni_for_the_original_host_name(
    certificates: Certificates,
    tls_server: Callable[[str], contextlib.AbstractAsyncContextManager[LoopbackServer]],
) -> None:
    resolve, _ = resolving_to(["127.0.0.1"])
    async with (
        tls_server("hooks.example") as server,
        build_http_client(
            LOOPBACK,
            resolver=resolve,
            verify=certificates.client_context(),
        ) as client,
    ):
        with anyio.fail_after(5):
            response = await client.get(f"https://hooks.example:{server.port}/secure")
    assert response.status_code == 200
    assert server.sni == ["hooks.example"]
    assert server.requests[0].headers["host"] == f"hooks.example:{server.port}"


async def test_tls_refuses_a_certificate_for_another_host_name(
    certificates: Certificates,
    tls_server: Callable[[str], contextlib.AbstractAsyncContextManager[LoopbackServer]],
) -> None:
    resolve, _ = resolving_to(["127.0.0.1"])
    async with (
        tls_server("other.example") as server,
        build_http_client(
            LOOPBACK,
            resolver=resolve,
            verify=certificates.client_context(),
        ) as client,
    ):
        with anyio.fail_after(5), pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY"):
            await client.get(f"https://hooks.example:{server.port}/secure")
    assert server.requests == []
