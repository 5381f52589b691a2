"""Every HTTP route checks the Host header (and Origin, which browsers send).

Found: only `/mcp` checked the Host header; `/metrics` and `/triggers/...` answered a request
for `Host: evil.example`, which is what a browser sends after a DNS-rebinding attack."""

from __future__ import annotations

from typing import Any

import anyio
import httpx2

ROUTES = ("/mcp", "/metrics", "/triggers/tsk_unknown")


async def test_every_route_refuses_a_foreign_host_and_a_foreign_origin(
    wakecall: Any, tokens: dict[str, str]
) -> None:
    token = next(t for t, owner in tokens.items() if owner == "alice")
    auth = {"Authorization": f"Bearer {token}"}
    with anyio.fail_after(60):
        async with wakecall.http_server() as server, httpx2.AsyncClient(timeout=10) as http:
            base = server.url.removesuffix("/mcp")
            for route in ROUTES:
                url = base + route
                foreign = await http.post(url, headers={**auth, "Host": "evil.example:8765"})
                assert foreign.status_code == 421, route
                origin = await http.post(url, headers={**auth, "Origin": "https://evil.example"})
                assert origin.status_code == 403, route
            # The same requests with the server's own host and no origin get past the check.
            metrics = await http.get(base + "/metrics", headers=auth)
            assert metrics.status_code == 200
            trigger = await http.post(base + "/triggers/tsk_unknown", json={})
            assert trigger.status_code == 401  # the trigger's own answer: unknown task
