"""`wakecall serve --http` serves the task view at /ui, behind its bearer tokens."""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
import pytest

pytestmark = pytest.mark.slow


async def test_serve_http_serves_the_page_and_each_owner_its_own_dashboard(
    wakecall: Any, tokens: dict[str, str]
) -> None:
    alice, bob = (next(t for t, o in tokens.items() if o == who) for who in ("alice", "bob"))
    with anyio.fail_after(60):
        async with wakecall.http_server() as server, httpx2.AsyncClient(timeout=10) as http:
            base = server.url.removesuffix("/mcp")
            async with wakecall.client(wakecall.http_transport(server.url, alice)) as agent:
                task = await wakecall.call(
                    agent,
                    "create_task",
                    {"name": "nightly report", "schedule": "0 2 * * *", "timezone": "Europe/Paris"},
                )
                tools = {t.name for t in (await agent.list_tools()).tools}
            assert "show_tasks" in tools
            page = await http.get(f"{base}/ui")
            assert page.status_code == 200 and "wakecall" in page.text
            assert (await http.get(f"{base}/ui/assets/view.js")).status_code == 200
            assert (await http.get(f"{base}/ui/api/dashboard")).status_code == 401
            mine = await http.get(
                f"{base}/ui/api/dashboard", headers={"Authorization": f"Bearer {alice}"}
            )
            assert [t["id"] for t in mine.json()["tasks"]] == [task["id"]]
            assert mine.json()["tasks"][0]["timezone"] == "Europe/Paris"
            theirs = await http.get(
                f"{base}/ui/api/dashboard", headers={"Authorization": f"Bearer {bob}"}
            )
            assert theirs.json()["tasks"] == []
            foreign = await http.get(f"{base}/ui", headers={"Host": "evil.example"})
            assert foreign.status_code == 421
    assert server.returncode == 0
    assert "Traceback" not in server.stderr_text


async def test_an_open_event_stream_ends_cleanly_when_the_server_stops(
    wakecall: Any, tokens: dict[str, str]
) -> None:
    alice = next(t for t, o in tokens.items() if o == "alice")
    ended: list[str] = []
    with anyio.fail_after(60):
        async with wakecall.http_server() as server:
            base = server.url.removesuffix("/mcp")
            async with (
                httpx2.AsyncClient(timeout=httpx2.Timeout(10, read=30)) as http,
                http.stream(
                    "GET", f"{base}/ui/api/events", headers={"Authorization": f"Bearer {alice}"}
                ) as stream,
            ):
                lines = stream.aiter_lines()
                assert (await lines.__anext__()) == "event: ready"
                server.process.send_signal(2)  # Ctrl-C
                # The stream ends as a response does (not cut off by the server's deadline,
                # which would be a protocol error here), before that deadline.
                with anyio.fail_after(3):
                    async for line in lines:
                        ended.append(line)
            await server.process.wait()
    assert server.returncode == 0
    assert "Traceback" not in server.stderr_text
