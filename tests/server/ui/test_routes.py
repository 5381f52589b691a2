"""/ui over HTTP: the page and its files, the bearer tokens, the Host and Origin checks, each
owner's data and actions, and the live event stream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from support.ui import Served, call, seed, serve_wakecall

pytestmark = pytest.mark.slow

JSON = {"Content-Type": "application/json"}


async def _get(served: Served, path: str, **headers: str) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=10) as http:
        return await http.get(f"{served.url}{path}", headers=headers)


async def _post(served: Served, path: str, body: str = "{}", **headers: str) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=10) as http:
        return await http.post(f"{served.url}{path}", content=body, headers=headers)


async def test_the_page_and_its_files_are_served_with_a_strict_policy(tmp_path: Path) -> None:
    with anyio.fail_after(30):
        async with serve_wakecall(tmp_path) as served:
            page = await _get(served, "/ui")
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            policy = page.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
            assert "<script>" not in page.text  # no inline code: the policy would refuse it
            assert '<script src="/ui/assets/view.js" defer>' in page.text
            for name, kind in [
                ("tasks.css", "text/css"),
                ("view.js", "text/javascript"),
                ("operator.js", "text/javascript"),
            ]:
                asset = await _get(served, f"/ui/assets/{name}")
                assert asset.status_code == 200
                assert asset.headers["content-type"].startswith(kind)
            assert (await _get(served, "/ui/assets/..%2Fapps.py")).status_code == 404
            assert (await _get(served, "/ui/assets/nothing.js")).status_code == 404


async def test_the_api_needs_a_token_and_the_page_passes_the_host_and_origin_checks(
    tmp_path: Path,
) -> None:
    with anyio.fail_after(30):
        async with serve_wakecall(tmp_path) as served:
            seeded = await seed(served)
            nightly = seeded.tasks["nightly report"]
            missing = await _get(served, "/ui/api/dashboard")
            assert missing.status_code == 401
            assert missing.headers["www-authenticate"].startswith("Bearer")
            assert "bearer token" in missing.json()["error"]
            wrong = await _get(served, "/ui/api/dashboard", Authorization="Bearer nope")
            assert wrong.status_code == 401
            events = await _get(served, "/ui/api/events")
            assert events.status_code == 401
            refused = await _post(served, f"/ui/api/tasks/{nightly}/pause", **JSON)
            assert refused.status_code == 401
            alice = served.headers("alice")
            rebound = {**alice, "Host": "evil.example:8765"}
            assert (await _get(served, "/ui", Host="evil.example")).status_code == 421
            assert (await _get(served, "/ui/api/dashboard", **rebound)).status_code == 421
            foreign = {**alice, **JSON, "Origin": "https://evil.example"}
            assert (
                await _post(served, f"/ui/api/tasks/{nightly}/pause", **foreign)
            ).status_code == 403
            # A form post (no JSON) is refused: a page elsewhere cannot act through a browser.
            form = {**alice, "Content-Type": "text/plain"}
            assert (
                await _post(served, f"/ui/api/tasks/{nightly}/pause", **form)
            ).status_code == 400
            task = await served.rt.tasks.get("alice", nightly)
            assert str(task.status) == "active"


async def test_each_owner_sees_and_acts_on_its_own_tasks_only(tmp_path: Path) -> None:
    with anyio.fail_after(30):
        async with serve_wakecall(tmp_path) as served:
            seeded = await seed(served)
            nightly = seeded.tasks["nightly report"]
            alice, bob = served.headers("alice"), served.headers("bob")
            board = (await _get(served, "/ui/api/dashboard", **alice)).json()
            assert len(board["tasks"]) == 5 and board["owner"] == "alice"
            bobs = (await _get(served, "/ui/api/dashboard", **bob)).json()
            assert [t["name"] for t in bobs["tasks"]] == ["bob's backup"]
            assert bobs["pending"] == [] and bobs["dead"] == []
            peek = await _get(served, f"/ui/api/dashboard?task_id={nightly}", **bob)
            assert peek.status_code == 404
            assert peek.json()["error"].startswith(f"no task with id {nightly!r}")
            for action in ("pause", "resume", "run_now"):
                answer = await _post(served, f"/ui/api/tasks/{nightly}/{action}", **bob, **JSON)
                assert answer.status_code == 404, action
            dead_id = board["dead"][0]["id"]
            answer = await _post(served, f"/ui/api/deliveries/{dead_id}/redeliver", **bob, **JSON)
            assert answer.status_code == 404
            task = await served.rt.tasks.get("alice", nightly)
            assert str(task.status) == "active"
            assert await served.rt.tasks.list_runs("alice", task_id=nightly, limit=10) != []
            runs_before = len(await served.rt.tasks.list_runs("alice", task_id=nightly, limit=10))

            paused = await _post(served, f"/ui/api/tasks/{nightly}/pause", **alice, **JSON)
            assert paused.status_code == 200 and paused.json()["status"] == "paused"
            assert str((await served.rt.tasks.get("alice", nightly)).status) == "paused"
            again = await _post(served, f"/ui/api/tasks/{nightly}/resume", **alice, **JSON)
            assert again.json()["status"] == "active"
            run = await _post(served, f"/ui/api/tasks/{nightly}/run_now", **alice, **JSON)
            assert run.status_code == 200 and run.json()["trigger"] == "manual"
            await served.settle()
            runs = await served.rt.tasks.list_runs("alice", task_id=nightly, limit=10)
            assert len(runs) == runs_before + 1
            sent = await _post(served, f"/ui/api/deliveries/{dead_id}/redeliver", **alice, **JSON)
            assert sent.status_code == 200 and sent.json()["id"] == dead_id
            unknown = await _post(served, f"/ui/api/tasks/{nightly}/delete", **alice, **JSON)
            assert unknown.status_code == 404
            assert "the actions are pause, resume, run_now" in unknown.json()["error"]
            assert await served.rt.tasks.get("alice", nightly)  # still there


async def _read_events(lines: Any, wanted: int) -> list[tuple[str, dict[str, Any]]]:
    """The next `wanted` server-sent events of a stream's lines, as (kind, data)."""
    found: list[tuple[str, dict[str, Any]]] = []
    kind = ""
    async for line in lines:
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            found.append((kind, json.loads(line[6:])))
            if len(found) == wanted:
                return found
    return found


async def test_the_event_stream_follows_the_owners_log_from_a_cursor(tmp_path: Path) -> None:
    with anyio.fail_after(30):
        async with serve_wakecall(tmp_path) as served:
            seeded = await seed(served)
            read_before = await served.rt.inbox.last_read("alice")
            latest = await served.rt.inbox.store.latest_cursor("alice")
            bad = await _get(served, "/ui/api/events?after=soon", **served.headers("alice"))
            assert bad.status_code == 400
            assert "expected a cursor" in bad.json()["error"]
            async with (
                httpx2.AsyncClient(timeout=httpx2.Timeout(10, read=30)) as http,
                http.stream(
                    "GET", f"{served.url}/ui/api/events", headers=served.headers("alice")
                ) as alices,
                http.stream(
                    "GET", f"{served.url}/ui/api/events?after=0", headers=served.headers("bob")
                ) as bobs,
            ):
                assert alices.headers["content-type"].startswith("text/event-stream")
                alice_lines, bob_lines = alices.aiter_lines(), bobs.aiter_lines()
                ((kind, ready),) = await _read_events(alice_lines, 1)
                assert (kind, ready) == ("ready", {"cursor": latest})
                ((kind, _),) = await _read_events(bob_lines, 1)
                assert kind == "ready"
                async with served.client("alice") as agent:
                    run = await call(agent, "run_now", task_id=seeded.tasks["weekly digest"])
                await served.settle()
                ((kind, event),) = await _read_events(alice_lines, 1)
                assert kind == "event"
                assert event["run_id"] == run["id"] and event["cursor"] == latest + 1
                # Bob's stream, from cursor 0, carries only Bob's own events.
                bob_events = await served.rt.inbox.store.list_events("bob")
                got = await _read_events(bob_lines, len(bob_events))
                assert [e["cursor"] for _, e in got] == [e.cursor for e in bob_events]
                assert all(e["task_id"] == seeded.bobs for _, e in got)
            # Watching does not mark the agent's events read.
            assert await served.rt.inbox.last_read("alice") == read_before
