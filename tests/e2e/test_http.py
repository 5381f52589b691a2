"""wakecall over Streamable HTTP, as a shared server: one process, bearer tokens mapped to
owners, several clients at once, both protocol generations."""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
import pytest
from mcp import MCPError

from support.protocol import INITIALIZE

pytestmark = pytest.mark.slow

#: Fields of a task that another owner's calls must never change.
STABLE = ("name", "status", "schedule", "timezone", "metadata", "run_count", "updated_at")
#: Bounds a whole test: process start-up, every call and shutdown.
TEST_TIMEOUT = 60
RAW_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def _token_of(tokens: dict[str, str], owner: str) -> str:
    return next(token for token, name in tokens.items() if name == owner)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_two_owners_at_once_each_see_only_their_own_tasks_runs_and_events(
    wakecall: Any, tokens: dict[str, str], mode: str
) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        async with (
            wakecall.http_server() as server,
            wakecall.client(
                wakecall.http_transport(server.url, _token_of(tokens, "alice")), mode=mode
            ) as alice,
            wakecall.client(
                wakecall.http_transport(server.url, _token_of(tokens, "bob")), mode=mode
            ) as bob,
        ):
            assert alice.protocol_version == bob.protocol_version
            a1 = await wakecall.call(alice, "create_task", {"name": "a1", "schedule": "0 9 * * *"})
            a2 = await wakecall.call(alice, "create_task", {"name": "a2", "schedule": "@every 1h"})
            b1 = await wakecall.call(bob, "create_task", {"name": "b1", "schedule": "0 9 * * *"})

            alice_tasks = (await wakecall.call(alice, "list_tasks", {}))["tasks"]
            bob_tasks = (await wakecall.call(bob, "list_tasks", {}))["tasks"]
            assert [t["id"] for t in alice_tasks] == [a1["id"], a2["id"]]
            assert [t["id"] for t in bob_tasks] == [b1["id"]]

            before = await wakecall.call(alice, "get_task", {"task_id": a1["id"]})
            not_bobs = {"task_id": a1["id"]}
            for tool, arguments in [
                ("get_task", not_bobs),
                ("patch_schedule", {**not_bobs, "name": "hijacked", "schedule": "* * * * *"}),
                ("pause", not_bobs),
                ("run_now", not_bobs),
                ("list_runs", not_bobs),
                ("delete", not_bobs),
            ]:
                error = await wakecall.call_error(bob, tool, arguments)
                assert f"no task with id {a1['id']!r}" in error, (tool, error)
            after = await wakecall.call(alice, "get_task", {"task_id": a1["id"]})
            assert {k: after[k] for k in STABLE} == {k: before[k] for k in STABLE}
            assert (await wakecall.call(alice, "list_runs", {"task_id": a1["id"]}))["runs"] == []

            # Runs and events belong to their owner.
            alice_run = await wakecall.call(alice, "run_now", {"task_id": a1["id"]})
            bob_run = await wakecall.call(bob, "run_now", {"task_id": b1["id"]})
            await wakecall.wait_for_event(alice, "task.run.completed", task_id=a1["id"])
            await wakecall.wait_for_event(bob, "task.run.completed", task_id=b1["id"])
            alice_events = (await wakecall.call(alice, "get_events", {"after": 0}))["events"]
            bob_events = (await wakecall.call(bob, "get_events", {"after": 0}))["events"]
            assert [(e["task_id"], e["run_id"]) for e in alice_events] == [
                (a1["id"], alice_run["id"])
            ]
            assert [(e["task_id"], e["run_id"]) for e in bob_events] == [(b1["id"], bob_run["id"])]
            assert [r["id"] for r in (await wakecall.call(alice, "list_runs", {}))["runs"]] == [
                alice_run["id"]
            ]
            assert [r["id"] for r in (await wakecall.call(bob, "list_runs", {}))["runs"]] == [
                bob_run["id"]
            ]
    # Ctrl-C stops the server cleanly.
    assert server.returncode == 0
    assert "Traceback" not in server.stderr_text


async def test_requests_without_a_valid_token_are_refused(
    wakecall: Any, tokens: dict[str, str]
) -> None:
    alice = _token_of(tokens, "alice")
    with anyio.fail_after(TEST_TIMEOUT):
        async with wakecall.http_server() as server, httpx2.AsyncClient(timeout=10) as http:
            with anyio.fail_after(10):
                missing = await http.post(server.url, json=INITIALIZE, headers=RAW_HEADERS)
                wrong = await http.post(
                    server.url,
                    json=INITIALIZE,
                    headers={**RAW_HEADERS, "Authorization": "Bearer no"},
                )
                good = {**RAW_HEADERS, "Authorization": f"Bearer {alice}"}
                foreign_host = await http.post(
                    server.url, json=INITIALIZE, headers={**good, "Host": "evil.example:8765"}
                )
                ok = await http.post(server.url, json=INITIALIZE, headers=good)
                session = {"mcp-session-id": ok.headers["mcp-session-id"]}
                await http.delete(server.url, headers={**good, **session})
            assert missing.status_code == 401
            assert missing.headers["www-authenticate"].startswith("Bearer ")
            assert wrong.status_code == 401
            assert foreign_host.status_code == 421  # DNS rebinding protection
            assert ok.status_code == 200

            # Through the SDK client, the refusal surfaces while connecting.
            for mode in ("auto", "legacy"):
                for token in (None, "no"):
                    with (
                        anyio.fail_after(10),
                        pytest.raises((MCPError, BaseExceptionGroup)) as raised,
                    ):
                        async with wakecall.client(
                            wakecall.http_transport(server.url, token), mode=mode
                        ):
                            pass
                    leaves = _leaf_exceptions(raised.value)
                    assert leaves and all(isinstance(e, MCPError) for e in leaves), leaves


async def test_serving_beyond_loopback_without_tokens_refuses_to_start(wakecall: Any) -> None:
    with anyio.fail_after(20):
        exited = await wakecall.run_to_end("--http", "--host", "0.0.0.0", "--port", "0")
    assert exited.returncode != 0
    assert "refusing to serve HTTP on 0.0.0.0 without bearer tokens" in exited.stderr
    assert "WAKECALL_TOKENS" in exited.stderr and "--tokens-file" in exited.stderr
    assert "serving MCP" not in exited.stderr
    assert exited.stdout == ""


async def test_a_subscribed_legacy_session_is_pushed_its_own_runs_and_nobody_elses(
    wakecall: Any, tokens: dict[str, str]
) -> None:
    alice_rec, bob_rec = wakecall.recorder(), wakecall.recorder()
    with anyio.fail_after(TEST_TIMEOUT):
        async with wakecall.http_server() as server:
            alice_transport = wakecall.http_transport(
                server.url, _token_of(tokens, "alice"), recorder=alice_rec
            )
            bob_transport = wakecall.http_transport(
                server.url, _token_of(tokens, "bob"), recorder=bob_rec
            )
            async with (
                wakecall.client(alice_transport, mode="legacy", recorder=alice_rec) as alice,
                wakecall.client(bob_transport, mode="legacy", recorder=bob_rec) as bob,
            ):
                assert alice.server_capabilities.experimental == {"claude/channel": {}}
                task = await wakecall.call(
                    alice, "create_task", {"name": "a", "schedule": "@daily"}
                )
                uri = f"wakecall://tasks/{task['id']}"
                # One round trip each before any push: an HTTP session registers, and its standing
                # GET stream attaches, only after the handshake has completed.
                await wakecall.subscribe(alice, uri)
                await wakecall.subscribe(bob, uri)  # another owner's task: never pushed to bob

                await _run_until_pushed(wakecall, alice, alice_rec, task["id"], uri)
                [log, *_] = alice_rec.logs_of("task.run.completed")
                assert log["task"]["id"] == task["id"] and log["run"]["status"] == "success"
                [channel, *_] = alice_rec.channel_of("task.run.completed")
                assert channel.meta["task_id"] == task["id"]

                # Pushes go out one at a time, in order: once bob has his own, he would already
                # have had any of alice's.
                own = await wakecall.call(bob, "create_task", {"name": "b", "schedule": "@daily"})
                await wakecall.subscribe(bob, f"wakecall://tasks/{own['id']}")
                await _run_until_pushed(
                    wakecall, bob, bob_rec, own["id"], f"wakecall://tasks/{own['id']}"
                )
            assert not bob_rec.updated(uri)
            assert {log["task"]["id"] for log in bob_rec.logs_of("task.run.completed")} == {
                own["id"]
            }
            assert {c.meta["task_id"] for c in bob_rec.channel} == {own["id"]}


async def test_a_listening_client_is_told_only_of_its_own_tasks(
    wakecall: Any, tokens: dict[str, str]
) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        async with (
            wakecall.http_server() as server,
            wakecall.client(
                wakecall.http_transport(server.url, _token_of(tokens, "alice"))
            ) as alice,
            wakecall.client(wakecall.http_transport(server.url, _token_of(tokens, "bob"))) as bob,
        ):
            assert bob.protocol_version == "2026-07-28"
            theirs = await wakecall.call(alice, "create_task", {"name": "a", "schedule": "@daily"})
            own = await wakecall.call(bob, "create_task", {"name": "b", "schedule": "@daily"})
            theirs_uri, own_uri = (f"wakecall://tasks/{t['id']}" for t in (theirs, own))
            with anyio.fail_after(15):
                # Even a listener that knows (or guesses) another owner's task id.
                async with bob.listen(resource_subscriptions=[theirs_uri, own_uri]) as updates:
                    await wakecall.call(alice, "run_now", {"task_id": theirs["id"]})
                    await wakecall.wait_for_event(alice, "task.run.completed", task_id=theirs["id"])
                    # Pushes go out in order: alice's run was announced before this change.
                    await wakecall.call(bob, "pause", {"task_id": own["id"]})
                    first = await updates.__anext__()
            assert first.uri == own_uri


async def _run_until_pushed(wakecall: Any, client: Any, rec: Any, task_id: str, uri: str) -> None:
    """Run the task until the session has been pushed the run's log, channel message and
    resource update. A push made before the session's GET stream attached is lost (the
    inbox keeps the event), hence the bounded retry."""

    def pushed() -> bool:
        return bool(
            rec.updated(uri)
            and any(log["task"]["id"] == task_id for log in rec.logs_of("task.run.completed"))
            and any(c.meta.get("task_id") == task_id for c in rec.channel)
        )

    with anyio.fail_after(15):
        while not pushed():
            await wakecall.call(client, "run_now", {"task_id": task_id})
            await wakecall.wait_for_event(client, "task.run.completed", task_id=task_id)
            with anyio.move_on_after(2):
                await rec.wait_until(pushed)


def _leaf_exceptions(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaf_exceptions(sub)]
    return [exc]


async def test_metrics_are_served_to_the_operator_and_count_pushes(
    wakecall: Any, tokens: dict[str, str]
) -> None:
    token = _token_of(tokens, "alice")
    rec = wakecall.recorder()
    with anyio.fail_after(TEST_TIMEOUT):
        async with wakecall.http_server("--metrics-token", "ops-token") as server:
            url = server.url.removesuffix("/mcp") + "/metrics"
            async with (
                httpx2.AsyncClient(timeout=10) as http,
                wakecall.client(
                    wakecall.http_transport(server.url, token, recorder=rec),
                    mode="legacy",
                    recorder=rec,
                ) as alice,
            ):
                refused = await http.get(url)
                assert refused.status_code == 401
                own = await http.get(url, headers={"Authorization": f"Bearer {token}"})
                assert own.status_code == 200
                assert "wakecall_due_tasks" not in own.text  # node-wide: the operator's
                auth = {"Authorization": "Bearer ops-token"}
                served = await http.get(url, headers=auth)
                assert served.status_code == 200
                assert served.headers["content-type"].startswith("text/plain")
                assert "wakecall_runs_running 0.0" in served.text
                assert "wakecall_due_tasks 0.0" in served.text
                # A run's event pushed to alice's live session counts as a push delivery.
                task = await wakecall.call(
                    alice,
                    "create_task",
                    {"name": "p", "schedule": "on demand", "action": {"type": "noop"}},
                )
                await wakecall.call(alice, "run_now", {"task_id": task["id"]})
                await rec.wait_until(lambda: bool(rec.logs_of("task.run.completed")))
                pushed = 'wakecall_deliveries_total{channel="push",status="delivered"}'
                # Another process counts: look again until it has.
                while pushed not in (text := (await http.get(url, headers=auth)).text):  # noqa: ASYNC110
                    await anyio.sleep(0.05)
                line = next(x for x in text.splitlines() if x.startswith(pushed))
                assert float(line.split()[-1]) >= 1
                run_line = f'{{status="success",task_id="{task["id"]}"}} 1.0'
                assert "wakecall_runs_finished_total" + run_line in text
